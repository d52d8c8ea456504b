"""The JSON paths of mappings and pollers: :mod:`whale.jsonpath` (shared with the inventory)."""

from whale.jsonpath import JsonPath as JsonPath
from whale.jsonpath import Missing as Missing
from whale.jsonpath import compile_path as compile_path
