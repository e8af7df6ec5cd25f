#!/bin/sh
# Smoke test for ferry's demo deployer: usage `smoke.sh ENV`.
#
# The demo deployer (config/scripts/deploy.sh) records each service it runs in ENV as the file
# state/ENV/SERVICE holding the version, relative to the folder of ferry.toml, which ferry passes
# as $FERRY_CONFIG_DIR (this script runs in the commands folder). $FERRY_STATE_DIR overrides the
# state folder. A real smoke test would call each service's health endpoint instead.
#
# Prints one line per service; exits 1 when nothing is deployed or a state file is empty.
set -eu
env="${1:?usage: smoke.sh ENV}"
state="${FERRY_STATE_DIR:-${FERRY_CONFIG_DIR:-../config}/state}"
dir="$state/$env"
if [ ! -d "$dir" ]; then
  echo "nothing is deployed in $env (no $dir)"
  exit 1
fi
count=0
bad=0
for file in "$dir"/*; do
  [ -f "$file" ] || continue
  service=$(basename "$file")
  version=$(cat "$file")
  if [ -n "$version" ]; then
    echo "ok   $service $version"
    count=$((count + 1))
  else
    echo "FAIL $service: its state file is empty"
    bad=$((bad + 1))
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "$bad service(s) in $env failed the smoke test"
  exit 1
fi
if [ "$count" -eq 0 ]; then
  echo "nothing is deployed in $env ($dir is empty)"
  exit 1
fi
echo "$count service(s) running in $env"
