#!/bin/sh
# Build the agent's Debian package: packaging/deb/build.sh [OUTDIR]  → OUTDIR/iommu-fleet-agent_<version>_all.deb
# (default OUTDIR: dist/). Needs only dpkg-deb and python3 (>= 3.11, to read the version from pyproject.toml).
# The agent goes to /usr/share/iommu-fleet-agent (a private directory: a top-level `agent` package
# in dist-packages would claim a name any other package could want), run by /usr/bin/fleet-agent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-"$repo/dist"}
version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
agent_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/agent/__init__.py")
if [ "$version" != "$agent_version" ]; then
  echo "build.sh: pyproject.toml says $version but agent/__init__.py says $agent_version" >&2
  exit 1
fi

stage=$(mktemp -d)
chmod 0755 "$stage"  # mktemp makes it 0700, and it becomes the installed system's /
trap 'rm -rf "$stage"' EXIT
lib="$stage/usr/share/iommu-fleet-agent"
doc="$stage/usr/share/doc/iommu-fleet-agent"
mkdir -p "$lib" "$doc" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/fleet-agent" "$stage/DEBIAN"

# The agent's sources and schema files only: no caches, no tests (they live outside agent/).
(cd "$repo" && find agent -type f \( -name '*.py' -o -name '*.json' \) ! -path '*/__pycache__/*' | sort) |
  while read -r f; do install -D -m 0644 "$repo/$f" "$lib/$f"; done
install -m 0755 "$here/fleet-agent" "$stage/usr/bin/fleet-agent"
# The unit of deploy/systemd, pointed at this package's paths instead of the venv install's.
sed -e '1i # Installed by the iommu-fleet-agent package: its user, /etc/fleet-agent and agent.env come with it;\
# the venv steps below do not apply, only the token (/etc/fleet-agent/token) is yours to add.' \
    -e 's|/opt/fleet-agent/bin/fleet-agent|/usr/bin/fleet-agent|' \
    -e 's|file:///opt/fleet-agent/share/doc/iommu-fleet/snapshot.md|file:///usr/share/doc/iommu-fleet-agent/snapshot.md|' \
    "$repo/deploy/systemd/fleet-agent.service" >"$stage/lib/systemd/system/fleet-agent.service"
chmod 0644 "$stage/lib/systemd/system/fleet-agent.service"
install -m 0640 "$here/agent.env" "$stage/etc/fleet-agent/agent.env"
install -m 0644 "$repo/docs/snapshot.md" "$doc/snapshot.md"
install -m 0644 "$here/copyright" "$doc/copyright"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$here/control" >"$stage/DEBIAN/control"
install -m 0644 "$here/conffiles" "$stage/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$stage/DEBIAN/postinst"

mkdir -p "$out"
deb="$out/iommu-fleet-agent_${version}_all.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
