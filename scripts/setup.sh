#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine, and nothing that is already there:
# Debian packages (PostgreSQL 15 + PostGIS 3, GDAL/GEOS/PROJ for GeoDjango) and the virtualenv
# from the requirements files. Safe to run again: a second run only checks stamps and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(postgresql-15 postgresql-15-postgis-3 gdal-bin libgdal32 libgeos-c1v5 libproj25
                 python3 python3-venv python3-dev)
# Pages: gettext compiles the message catalogs; chromium is the browser the page tests
# drive (Playwright uses it as it is, it never downloads a browser); a small CJK font so that its
# screenshots show Chinese text, not boxes; libatomic1 for the node binary inside Playwright's
# Python package (its driver), which a minimal Debian lacks.
debian_packages+=(gettext chromium fonts-wqy-microhei libatomic1)
# The monthly situation report's PDF (WeasyPrint) lays text out with Pango and HarfBuzz; its
# Chinese text and the charts' labels use the same WenQuanYi font.
debian_packages+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig)
# QGIS's OGC API – Features provider, driven headless from Debian's python3 by the outside-client
# tests (tests/mapserver/test_ogc_clients.py): about 100 MB to download, a minute to install.
debian_packages+=(python3-qgis)
# The production stack and its drills (scripts/stack): Patroni on etcd for replicated PostGIS,
# pgBackRest for backups and point-in-time restore, HAProxy to the primary and the replicas,
# nginx (with brotli) for TLS, compression and static files, openssl for the drills' certificate.
debian_packages+=(patroni python3-etcd etcd-server etcd-client pgbackrest haproxy nginx
                  libnginx-mod-http-brotli-filter libnginx-mod-http-brotli-static openssl)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node.js and npm install the front-end packages. Checked by command, not by package: a machine
# may have Node.js from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # A policy-rc.d that says no keeps apt from starting the packages' own services (a cluster on
  # :5432, nginx on :80, etcd on :2379): the project runs its own, unprivileged, under var/.
  policy=/usr/sbin/policy-rc.d
  ours=
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    ours=1
  fi
  installed=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || installed=$?
  if [ -n "$ours" ]; then as_root rm -f "$policy"; fi
  [ "$installed" -eq 0 ] || exit "$installed"
fi

# POSIX shared memory: Patroni's failover and Python's multiprocessing create their semaphores in
# /dev/shm, as the stack's unprivileged account. Every Debian host mounts a tmpfs there; a chroot
# or container may give a bare directory only root can write, and then a failover fails with
# "Permission denied" at the moment it is needed.
if ! mountpoint -q /dev/shm; then
  echo "setup: /dev/shm is not mounted; mounting a tmpfs there (mode 1777) for POSIX semaphores"
  as_root mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm \
    || echo "setup: could not mount /dev/shm: the stack's failover (make drill, tests/operations) will fail" >&2
fi

# The virtualenv is rebuilt only when a requirements file changed since the last install:
# requirements.txt is what the application runs on; requirements-dev.txt adds the tests and tooling
# and requirements-nodeps.txt the packages installed without their declared dependencies (the OGC
# test suite ogctests pins releases of pyarrow and httpx that it does not need to run). A
# production host sets MINQING_PACKAGES=runtime and gets requirements.txt only.
packages=${MINQING_PACKAGES:-dev}
case "$packages" in
  dev) requirement_files=(requirements.txt requirements-dev.txt requirements-nodeps.txt) ;;
  runtime) requirement_files=(requirements.txt) ;;
  *) echo "setup: MINQING_PACKAGES must be dev or runtime, got '$packages'" >&2; exit 2 ;;
esac
stamp=.venv/.requirements.sha256
wanted=$( (echo "$packages"; cat "${requirement_files[@]}") | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing Python packages into .venv ($packages)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if [ "$packages" = dev ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  else
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  fi
  echo "$wanted" > "$stamp"
fi
mkdir -p var

# Front-end packages (leaflet, leaflet.vectorgrid, echarts, the division list: package.json),
# installed exactly as package-lock.json says, again only when the lockfile changed since the
# last install; ESLint and its rules are development packages, left out with MINQING_PACKAGES=runtime.
npm_omit=$([ "$packages" = runtime ] && echo "--omit=dev" || true)
npm_stamp=node_modules/.package-lock.sha256
npm_wanted=$( (echo "$packages"; cat package-lock.json) | sha256sum | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_wanted" ]; then
  echo "setup: installing front-end packages (npm ci $npm_omit)"
  npm ci --no-audit --no-fund --loglevel=error $npm_omit
  echo "$npm_wanted" > "$npm_stamp"
fi

# Message catalogs: the .mo files are built here from locale/*/LC_MESSAGES/*.po (not committed),
# again only when a catalog changed.
mo_stamp=var/.messages.sha256
mo_wanted=$(cat locale/*/LC_MESSAGES/*.po | sha256sum | cut -d' ' -f1)
if [ "$(cat "$mo_stamp" 2>/dev/null)" != "$mo_wanted" ] || ! ls locale/*/LC_MESSAGES/*.mo >/dev/null 2>&1; then
  echo "setup: compiling message catalogs"
  DJANGO_SETTINGS_MODULE=settings.dev .venv/bin/python manage.py compilemessages -v0 \
      --ignore=node_modules --ignore=var --ignore=.venv
  echo "$mo_wanted" > "$mo_stamp"
fi
