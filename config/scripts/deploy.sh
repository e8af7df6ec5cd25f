#!/bin/sh
# Demo deployer: "runs" SERVICE at VERSION in ENV by writing state/ENV/SERVICE (relative to the
# working directory). A version containing "broken" fails the way a bad release would.
set -eu
env="$1" service="$2" version="$3"
case "$version" in
  *broken*) echo "release $version of $service crashed on start" >&2; exit 3 ;;
esac
mkdir -p "state/$env"
printf '%s\n' "$version" > "state/$env/.$service.tmp"
mv "state/$env/.$service.tmp" "state/$env/$service"
printf '%s %s %s\n' "$env" "$service" "$version" >> state/deploy.log
echo "deployed $service $version to $env"
