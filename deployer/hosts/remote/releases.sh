# Shared by driver.sh and probe.sh: deployer.hosts.release.remote_script puts it before them.

# Prints the names of the releases in directory $1, one a line, newest first: by when
# each was last unpacked or switched to, both of which rewrite its .deploy-version
# (one ls -t, and no touch(1) at a switch). A directory without that file, which the
# driver did not make, comes last.
list_releases() {
    _releases=$1
    set -- "$_releases"/*/.deploy-version
    if [ -e "$1" ]; then
        ls -1t "$@" | while IFS= read -r _release; do
            _release=${_release%/.deploy-version}
            printf '%s\n' "${_release##*/}"
        done
    fi
    for _release in "$_releases"/*/; do
        [ -d "$_release" ] && [ ! -e "$_release.deploy-version" ] || continue
        _release=${_release%/}
        printf '%s\n' "${_release##*/}"
    done
}
