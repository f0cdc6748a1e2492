# Shared by driver.sh and probe.sh: deployer.hosts.release.remote_script puts it before them.

# Prints the names of the releases in directory $1, one a line, newest first: by when
# each was last unpacked or switched to, both of which rewrite its .deploy-version (no
# touch(1) at a switch). Ties go by name (in glob order; ls -t's is the same in the C
# locale). A directory without that file, which the driver did not make, comes last.
# Up to 16 releases are ordered with test's -nt, a builtin: no process (a process costs the
# host about a millisecond, and every deployment that prunes lists); the sort is quadratic,
# so more take one ls -t. busybox's -nt compares whole seconds: there, releases written in
# the same second count as a tie.
list_releases() {
    _releases=$1
    set -- "$_releases"/*/.deploy-version
    [ -e "$1" ] || set -- # the glob matched nothing: it stands for itself
    if [ $# -gt 16 ]; then
        LC_ALL=C ls -1t "$@" | while IFS= read -r _release; do
            _release=${_release%/.deploy-version}
            printf '%s\n' "${_release##*/}"
        done
    else
        while [ $# -gt 0 ]; do
            _newest=$1
            for _file; do [ "$_file" -nt "$_newest" ] && _newest=$_file; done
            _release=${_newest%/.deploy-version}
            printf '%s\n' "${_release##*/}"
            _left=
            for _file; do
                [ -n "$_left" ] || { set --; _left=1; }
                [ "$_file" = "$_newest" ] || set -- "$@" "$_file"
            done
        done
    fi
    for _release in "$_releases"/*/; do
        [ -d "$_release" ] && [ ! -e "$_release.deploy-version" ] || continue
        _release=${_release%/}
        printf '%s\n' "${_release##*/}"
    done
}
