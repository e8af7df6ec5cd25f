#!/bin/sh
# Demo health check: healthy when the running version is the one just deployed.
set -eu
[ "$(cat "state/$1/$2" 2>/dev/null)" = "$3" ]
