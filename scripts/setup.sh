#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine, and nothing that is already there:
# Debian packages (PostgreSQL 15 + PostGIS 3, GDAL/GEOS/PROJ for GeoDjango) and the virtualenv
# from requirements.txt. Safe to run again: a second run only checks stamps and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(postgresql-15 postgresql-15-postgis-3 gdal-bin libgdal32 libgeos-c1v5 libproj25
                 python3 python3-venv python3-dev)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # policy-rc.d keeps apt from starting the distribution's own cluster on :5432; the project
  # runs its own cluster under var/ (scripts/db.sh).
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtualenv is rebuilt only when requirements.txt changed since the last install.
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing Python packages into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$wanted" > "$stamp"
fi
mkdir -p var
