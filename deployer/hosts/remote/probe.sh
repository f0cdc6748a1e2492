# deployer's remote probe: what an app's target directory holds, read-only.
# Sent as `sh -c <releases.sh, this script> probe <target> <deployment id or empty>`; parsed by
# deployer.hosts.release.parse_probe. Lines:
#   @@current <version>      what `current` points to (empty when there is none)
#   @@release <name>         each kept release, newest switch first
#   @@outcome <outcome>      the driver's record of the deployment id (see driver.sh);
#                            `running` only while the recorded driver process is alive,
#                            `interrupted:<step>` when it died without finishing
#                            (the journal: see driver.sh); none for a host only
#                            staged, where nothing live changed
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
    case $outcome in
    running | ended)
        # Between two steps, or in one: either way the driver is still at it, or died.
        outcome=running
        if [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then outcome=interrupted:$3; fi
        ;;
    staged) outcome= ;; # only staged: nothing live changed, as if it never began
    esac
    [ -n "$outcome" ] && printf '@@outcome %s\n' "$outcome"
fi
exit 0
