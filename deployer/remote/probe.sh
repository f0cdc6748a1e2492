# deployer's remote probe: what an app's target directory holds, read-only.
# Sent as `sh -c <releases.sh, this script> probe <target> <deployment id or empty>`; parsed by
# deployer.release.parse_probe. Lines:
#   @@current <version>      what `current` points to (empty when there is none)
#   @@release <name>         each kept release, newest switch first
#   @@outcome <outcome>      the driver's record of the deployment id (see driver.sh);
#                            `running` only while the recorded driver process is alive,
#                            `interrupted:<step>` when it died without finishing
#                            (state file: see driver.sh)
target=$1 id=$2
case $target in
"~") target=$HOME ;;
"~/"*) target=$HOME/${target#"~/"} ;;
/*) ;;
*) target=$HOME/$target ;;
esac
link=$(readlink "$target/current" 2>/dev/null) || link=
printf '@@current %s\n' "${link##*/}"
if [ -d "$target/releases" ]; then
    list_releases "$target/releases" | while IFS= read -r name; do printf '@@release %s\n' "$name"; done
fi
if [ -n "$id" ] && [ -f "$target/.deploy/$id.state" ]; then
    # The driver appends; its last line counts. Empty means it is writing the first one.
    last=running
    while IFS= read -r line; do [ -n "$line" ] && last=$line; done <"$target/.deploy/$id.state"
    set -- $last
    outcome=$1
    if [ "$outcome" = running ] && [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then
        outcome=interrupted:$3
    fi
    printf '@@outcome %s\n' "$outcome"
fi
exit 0
