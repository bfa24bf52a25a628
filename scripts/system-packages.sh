#!/usr/bin/env bash
# Installs the Debian packages the tests drive (Chromium for the page, PostgreSQL behind a shared
# MLflow server, nginx in front of replicas, iproute2 and curl for the namespaced hosts); skips what is present.
set -euo pipefail
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || packages+=(iproute2)
command -v curl >/dev/null || packages+=(curl)
if [ ${#packages[@]} -eq 0 ]; then
  echo "==> System packages already installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "==> Installing Debian packages: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
