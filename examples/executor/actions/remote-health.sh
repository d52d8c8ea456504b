# Runs on the host as `sh -s -- TOP`; prints load, memory and the TOP fullest filesystems.
set -eu
top="${1:-5}"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
free -m 2>/dev/null | sed -n 2p || true
df -P | tail -n +2 | sort -k5 -rn | head -n "$top"
