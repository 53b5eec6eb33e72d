#!/usr/bin/env bash
# Installs the Debian package built by build-deb.sh on this machine (as root), checks what an
# operator relies on, then purges it. CI runs it; it refuses to touch an existing install.
#   packaging/test-deb.sh "$(packaging/build-deb.sh | tail -n 1)"
set -euo pipefail
deb=${1:?usage: test-deb.sh PACKAGE.deb}
[ "$(id -u)" -eq 0 ] || { echo "test-deb.sh: needs root (dpkg -i)" >&2; exit 1; }
if dpkg-query -W -f '${Status}' logding 2>/dev/null | grep -q installed; then
    echo "test-deb.sh: logding is already installed here; not replacing it" >&2
    exit 1
fi
trap 'dpkg --purge logding >/dev/null 2>&1 || true' EXIT
step() { printf 'deb: %s\n' "$*"; }

dpkg -i "$deb"
step "installed $(dpkg-query -W -f '${Package} ${Version}' logding)"
getent passwd logding >/dev/null
step "user: $(getent passwd logding)"
dpkg-query -W -f '${Conffiles}\n' logding | grep -q '/etc/logding/rules/java.yaml'
dpkg-query -W -f '${Conffiles}\n' logding | grep -q '/etc/logding/logding.yaml'
step "conffiles: /etc/logding/logding.yaml and rules/"

# What the unit's ExecStartPre runs, as the unit's user: the config with its rule files.
runuser -u logding -- /usr/bin/logding check -c /etc/logding/logding.yaml
systemd-analyze verify /usr/lib/systemd/system/logding.service /usr/lib/systemd/system/logding-relay.service
step "systemd-analyze verify: both units clean"
grep -q '^ExecStartPre=/usr/bin/logding check -c /etc/logding/logding.yaml$' /usr/lib/systemd/system/logding.service
grep -q '^ExecStart=/usr/bin/logding relay -c /etc/logding/relay.yaml$' /usr/lib/systemd/system/logding-relay.service
grep -q '^StateDirectory=logding$' /usr/lib/systemd/system/logding.service

zcat /usr/share/man/man1/logding.1.gz | grep -q '^\.TH logding 1'
zcat /usr/share/man/man1/logding-run.1.gz | grep -q 'dry'
bash -n /usr/share/bash-completion/completions/logding
grep -q 'complete -c logding' /usr/share/fish/vendor_completions.d/logding.fish
grep -q '#compdef logding' /usr/share/zsh/vendor-completions/_logding
/usr/bin/logding schema | cmp - /usr/share/logding/schema/logding.schema.json
step "man pages, completions and schemas installed"

# Editors find the schema every installed file names (yaml-language-server resolves a relative
# path against the file's directory).
for file in /etc/logding/logding.yaml /etc/logding/rules/*.yaml; do
    schema=$(sed -n '1s/^# yaml-language-server: \$schema=//p' "$file")
    [ -n "$schema" ] || { echo "$file: no schema modeline" >&2; exit 1; }
    case $schema in /*) ;; *) schema=$(dirname "$file")/$schema ;; esac
    [ -f "$schema" ] || { echo "$file: its schema $schema does not exist" >&2; exit 1; }
done
step "every file in /etc/logding names an installed schema"

dpkg -r logding
test ! -e /usr/bin/logding
test -e /etc/logding/logding.yaml   # conffiles stay until purge
dpkg --purge logding
test ! -e /etc/logding/logding.yaml
test ! -e /usr/lib/systemd/system/logding.service
step "removed, then purged: nothing left in /usr/bin, /etc/logding or the unit directory"
