#!/usr/bin/env bash
# Debian packages the test suite needs: OpenSSH (the test fleet's sshd hosts and the
# real `ssh` client), util-linux (unshare and nsenter give each host a private /srv)
# and tmux (terminal tests). Idempotent: when everything is installed it only checks
# and returns, without touching the package lists.
set -euo pipefail

packages=(python3-venv openssh-server openssh-client util-linux tmux)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "install-system.sh: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        fi
        as_root=(sudo)
    fi
    echo "install-system.sh: installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# sshd refuses to start without its privilege-separation directory; /run is a tmpfs,
# so it may be gone even when the package is installed.
if [[ $(id -u) -eq 0 ]]; then
    install -d -m 0755 /run/sshd
fi
