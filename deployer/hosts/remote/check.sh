# deployer's preflight (`deploy check`): could a deployment run here? It changes nothing:
# it only looks (test, command -v, df).
# Sent as `sh -c <releases.sh, this script> check <target>`; parsed by
# deployer.hosts.preflight.parse_check. Lines:
#   @@missing <command>      a command the driver needs and this host lacks
#   @@problem <sentence>     the target directory cannot be made, or is not writable
#   @@free <kilobytes> <dir> free space in <dir>, where the release would be unpacked
#                            (none when df is missing or cannot tell)
target=$1
case $target in
"~") target=$HOME ;;
"~/"*) target=$HOME/${target#"~/"} ;;
"~"*) printf '@@problem target %s: only ~ and ~/path are understood\n' "$target" && exit 0 ;;
/*) ;;
*) target=$HOME/$target ;;
esac
# What driver.sh runs (see its header), every one a separate program on most hosts.
for name in tar gzip head cat mkdir mv ln rm ls readlink sed date sleep; do
    command -v "$name" >/dev/null 2>&1 || printf '@@missing %s\n' "$name"
done
command -v timeout >/dev/null 2>&1 || command -v setsid >/dev/null 2>&1 || printf '@@missing timeout\n'
# The target, or the nearest directory above it that exists: the driver makes the rest.
dir=$target
while [ ! -e "$dir" ] && [ ! -L "$dir" ]; do
    dir=${dir%/*}
    [ -n "$dir" ] || dir=/
done
if [ ! -d "$dir" ]; then
    printf '@@problem %s is not a directory: the target %s cannot be made\n' "$dir" "$target"
    exit 0
elif [ "$dir" != "$target" ]; then
    [ -w "$dir" ] && [ -x "$dir" ] || printf '@@problem the target %s does not exist and %s is not writable: it cannot be made\n' "$target" "$dir"
else
    for sub in "$target" "$target/releases" "$target/.deploy"; do
        [ ! -e "$sub" ] || { [ -d "$sub" ] && [ -w "$sub" ] && [ -x "$sub" ]; } || printf '@@problem %s is not a writable directory\n' "$sub"
    done
    if [ -e "$target/current" ] && [ ! -L "$target/current" ]; then
        printf '@@problem %s/current is not a symbolic link; move it away\n' "$target"
    fi
fi
# df -P: one line per file system, the fourth field the kilobytes available.
free=$(df -Pk "$dir" 2>/dev/null) || exit 0
set -- ${free##*"
"}
[ $# -ge 4 ] && printf '@@free %s %s\n' "$4" "$dir"
exit 0
