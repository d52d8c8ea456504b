#!/usr/bin/env sh
# Install Debian's OpenSSH server (/usr/sbin/sshd) that the SSH action tests and the `make run`
# demo hosts start as their own unprivileged-port server, once per machine.
#
#   deploy/tools/install-sshd.sh
#
# Prints the path of sshd on stdout. When it is missing and we are root, runs
# `apt-get update && apt-get install -y openssh-server` (the system service is not started: the
# tests run their own sshd on a loopback port). Otherwise says what to install and fails.
set -eu

SSHD="${WHALE_SSHD:-/usr/sbin/sshd}"

if [ -x "$SSHD" ]; then
    echo "$SSHD"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-sshd: error: $SSHD not found; install OpenSSH's server (Debian/Ubuntu: sudo apt-get install -y openssh-server) or set WHALE_SSHD" >&2
    exit 1
fi
echo "install-sshd: installing openssh-server with apt-get (first run only)" >&2
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting the system-wide sshd on port 22
POLICY=/usr/sbin/policy-rc.d
CREATED=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && CREATED=1
fi
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends openssh-server >&2
if [ -n "$CREATED" ]; then rm -f "$POLICY"; fi
"$SSHD" -V 2>&1 | head -1 >&2 || true
echo "$SSHD"
