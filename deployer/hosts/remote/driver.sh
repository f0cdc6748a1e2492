# deployer's remote driver, protocol v2: one host's deployment in ONE exec channel.
#
# This header is the one description of the host protocol; deployer.hosts.protocol holds its
# messages as types (one encoder, one parser) and generates the line that assigns this
# script's arguments (DRIVER_PARAMS there), so no position is kept in step by hand.
# POSIX sh only, no python on the host. Uses GNU `timeout` (or, where there is none,
# `setsid` and a sleeping watchdog) to kill a hook with its children, `mv -T` (GNU or
# busybox), head and tar; GNU ln spares one where a host has it (atomic_ln). Shell
# built-ins do what they can: every process costs the host CPU, for each of many hosts
# at once. The tools every deployment runs (head, mkdir, tar, mv, ln, rm) run with
# LC_ALL=C: their errors are matched below ("No space left"), whatever the host's
# language, and C spares each process a locale lookup. Hooks keep the host's locale.
#
# A conversation has two phases.
#
# 1. Staging, before the host's wave (nothing live changes). The driver says
#      @@hello <protocol version>
#      @@previous <dir>               what `current` points to now (may be empty)
#      @@release <dir>                (not for a restart) the kept releases, newest first,
#                                     when there are more than the spec keeps, the new one
#                                     counted (the controller picks what to prune)
#      @@step upload start            (not for a restart) then, if the host lacks the release,
#      @@need-artifact <path> <how>   and WAITS: <how> `stdin` (GNU head is here): the controller
#                                     sends `data <bytes>`, exactly that many bytes, then `sent`;
#                                     <how> `file`: `sent` once the controller wrote <path>
#                                     through a channel of its own. `sent go` instead of
#                                     `sent`: the host's wave runs already, and its go
#                                     (below) follows at once; the driver takes it, and
#                                     from then on the listener (phase 2) reads the
#                                     controller's lines, during the unpack too
#      @@step upload end <exit> 1     the release is unpacked in releases/<dir>
#      @@staged                       and, unless it has its go, WAITS for the one message
#                                     of the host's wave:
#    `go<TAB><UTC time, or empty><TAB><previous dir><TAB><positions to prune, space-separated>`.
#    EOF (or anything else) instead: the controller went away or let the host go before
#    its wave; the driver leaves without a record, the staged release stays as an
#    ordinary non-current one.
# 2. The wave: the driver runs stop, before_install, after_install, switch, start,
#    validate and prune by itself, saying for each
#      @@step <step> start / @@output <token> ... @@output-end <token> /
#      @@step <step> end <exit> <attempts> [timeout] / @@error <sentence> (why it failed)
#    without waiting for answers. A listener in the background takes the controller's
#    later lines: `stop` (an operator's abort: honoured before each step until the old
#    release was stopped), and `done <exit> <attempts> [timeout]`, the result of a hook
#    the controller runs itself (kind `c`, a Fabric task: the driver says
#    `@@env <NAME> <value>` for DEPLOY_VERSION, DEPLOY_PREVIOUS_VERSION and
#    DEPLOY_RELEASE_DIR, then the step's start, and waits for the result). Prune runs only
#    when `current` still is the previous dir the go message names.
#    Last: @@done <outcome> (succeeded | failed:<step>:<exit> | aborted:<step>) and
#    @@current <dir>, what `current` points to as the driver leaves.
# A <dir> is a release's directory name: its version, %-escaped (deployer.hosts.release).
# The output <token> names the deployment, step and driver process: no hook prints it.
# A controller that vanishes during the wave (a write gets SIGPIPE) leaves the driver to
# finish the host by itself, its lines going to <id>.driver.out: no host is left
# half-switched. A kind-`c` hook cannot run without the controller: its step fails.
#
# The journal, in <target>/.deploy/ (flat, so a run creates no directory), is the
# crash-safe record: `deploy resume` and `deploy reconcile` read it (deployer/hosts/remote/probe.sh).
#   <id>.state          appended lines, the last one counts: `running <pid> <step>` before a
#                       step runs, `ended <pid> <step> <exit>` after, then `succeeded`,
#                       `failed:<step>:<exit>` or `aborted:<step>`. (Protocol v1 wrote the
#                       same lines but `ended`: its journals read the same.)
#   <id>.<step>.log     each step's output
#   <id>.artifact.tar.gz  the artifact as it arrived; emptied once unpacked
#   <id>.stop, <id>.reply  the listener's notes to the driver, removed as it leaves
#   .tool-ln            whether the host's ln switches atomically, learnt once (atomic_ln)


# The arguments (target, id, kind, ..., keep_ids) and PROTOCOL are assigned by the line
# deployer.hosts.protocol puts before this script.
keep_ids=" $keep_ids "
DEPLOY_VERSION=$version DEPLOY_ID=$id DEPLOY_PREVIOUS_VERSION= DEPLOY_RELEASE_DIR=
export DEPLOY_APP DEPLOY_ENVIRONMENT DEPLOY_HOST DEPLOY_DATACENTER DEPLOY_VERSION DEPLOY_ID
export DEPLOY_PREVIOUS_VERSION DEPLOY_RELEASE_DIR

said= committed=0 hooked=0 made_temporary=0 unpacking= step= cur= prev= log=/dev/null records= state= listener= went=
newline='
'
tab='	'

# The step a failure before any step is charged to: the first one the job would run
# (deployer.hosts.release.first_step says the same).
if [ "$kind" != restart ]; then
    first_step=upload
elif [ -z "$stop_cmd" ] && [ -n "$start_cmd" ]; then
    first_step=start
elif [ -z "$stop_cmd" ] && [ -n "$val_cmd" ]; then
    first_step=validate
else
    first_step=stop
fi

# A caught (not ignored) SIGPIPE/SIGHUP: the hooks still get default signal handling,
# and a write to a vanished controller sends the lines to a file instead of killing
# the driver, which finishes the host by itself.
go_autonomous() {
    if [ -n "$records" ]; then exec >>"$records/$id.driver.out" 2>&1; else exec >/dev/null 2>&1; fi
}
trap 'go_autonomous' PIPE HUP

put_state() {
    [ -n "$state" ] && printf '%s\n' "$1" >>"$state"
}

# Marker lines wait in $pending and go out together when a step starts, before the
# driver waits, with output, or at the end: fewer writes, fewer SSH packets.
pending=
say() {
    pending="$pending$*
"
}
flush() {
    [ -n "$pending" ] && printf '%s' "$pending"
    pending=
}

# Whether releases/$dir still is the one this run claimed and is unpacking (see upload).
still_unpacking() {
    [ -f "$unpacking/.deploy-sha256" ] && IFS= read -r mark <"$unpacking/.deploy-sha256" &&
        [ "$mark" = "unpacking $id $$" ]
}

# Removes what a run that stopped half-way may leave (only when it made any).
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    # Tested first: an rm costs a process, and most runs leave neither.
    for note in "$records/$id.stop" "$records/$id.reply"; do
        [ -n "$records" ] && [ -e "$note" ] && rm -f "$note"
    done
    [ "$made_temporary" = 1 ] || return 0
    # A release this run was unpacking, while it still is this run's (see upload).
    [ -n "$unpacking" ] && still_unpacking && LC_ALL=C rm -rf "$unpacking"
    # Test first: most runs leave nothing, and a test costs no process.
    for leftover in "$target/releases/.tmp-$id" "$target/releases/.old-$id" "$target/.current-$id"; do
        if [ -e "$leftover" ] || [ -L "$leftover" ]; then LC_ALL=C rm -rf "$leftover"; fi
    done
    # The artifact's file stays, emptied (no process), until the records are pruned.
    [ -s "$records/$id.artifact.tar.gz" ] && : >"$records/$id.artifact.tar.gz"
    return 0
}

# Ends the run, saying $1 (the outcome) and, when given, @@error $2.
leave() {
    [ -n "$2" ] && say "@@error $2"
    put_state "$1"
    say "@@done $1"
    say "@@current $cur"
    flush
    cleanup
    [ -n "$cg_run" ] && rmdir "$cg_run" 2>/dev/null
    exit 0
}

# Ends a run that the controller let go before its wave (or lost then): nothing live
# changed, so no record stays and a resumed deployment starts the host over; a release
# already unpacked stays, an ordinary non-current one.
vanish() {
    made_temporary=1
    cleanup
    rm -f "$records/$id".*
    exit 0
}

# Ends the run: failed at $step with exit $1 (and @@error $2 when given).
fail() {
    leave "failed:$step:$1" "$2"
}

# Sets $v to the version release directory $1 holds: its name, unless escaped (see
# deployer.hosts.release.release_dir_name), then its .deploy-version.
version_of() {
    v=$1
    case $1 in *%*) [ -f "$target/releases/$1/.deploy-version" ] && IFS= read -r v <"$target/releases/$1/.deploy-version" ;; esac
}

# Sets $cur to the release directory `current` points to (cd -P: no process needed).
read_current() {
    cur=
    if [ -L "$target/current" ] && cd -P "$target/current" 2>/dev/null; then
        cur=${PWD##*/}
        cd /
    fi
}

# One line from the controller into $reply, during staging; EOF means it went away.
ask() {
    flush
    IFS= read -r reply || vanish
}

# Starts step $1: journal first, then the marker, sent at once so the controller times
# the step from its start. An operator's stop holds until the old release was stopped.
begin() {
    step=$1
    if [ "$committed" = 0 ] && [ -n "$records" ] && [ -e "$records/$id.stop" ]; then
        leave "aborted:$step"
    fi
    put_state "running $$ $step"
    say "@@step $step start"
    flush
    log=$records/$id.$step.log
    : >"$log"
}

# Ends the step: journal, then its output (its last 64 KiB) and the end marker: $1 exit,
# $2 attempts, $3 timeout. The output goes between `@@output <token>` and a newline of its
# own followed by `@@output-end <token>`: one tail(1).
finish() {
    put_state "ended $$ $step $1"
    if [ -n "$said" ]; then
        # What the driver itself wrote to the log, known here: sent without a tail(1).
        say "@@output $id.$step.$$"
        pending="$pending$said"
        said=
        say "@@output-end $id.$step.$$"
    elif [ -s "$log" ]; then
        say "@@output $id.$step.$$"
        flush
        tail -c 65536 "$log"
        say ""
        say "@@output-end $id.$step.$$"
    fi
    say "@@step $step end $1 ${2:-1}${3:+ timeout}"
}

# The controller's lines during the wave, read in the background so that no step waits
# for them: `stop` leaves a note the driver reads before each step; `done ...` (a hook's
# result) is written down and ends the listener, which the waiting driver sees.
listen() {
    while IFS= read -r line; do
        case $line in
        stop*) : >"$records/$id.stop" ;;
        done*)
            printf '%s\n' "$line" >"$records/$id.reply"
            exit 0
            ;;
        esac
    done
}
start_listener() {
    listen <&3 >/dev/null 2>&1 &
    listener=$!
}

# Takes the go in $reply: `go<TAB><time><TAB><previous dir><TAB><positions>` (a version
# holds no control character); anything else, the controller let the host go. From then
# on the listener reads the controller's lines.
take_go() {
    case $reply in "go$tab"*) ;; *) vanish ;; esac
    reply=${reply#go"$tab"}
    when=${reply%%"$tab"*} reply=${reply#*"$tab"}
    expected=${reply%%"$tab"*} doomed=${reply#*"$tab"}
    went=1
    exec 3<&0 </dev/null
    start_listener
}

# Sets $found to the path of command $1 on $PATH (empty if none), without the process a
# $(command -v) costs.
find_command() {
    found= rest=$PATH:
    while [ -n "$rest" ]; do
        entry=${rest%%:*} rest=${rest#*:}
        if [ -f "${entry:-.}/$1" ] && [ -x "${entry:-.}/$1" ]; then
            found=${entry:-.}/$1
            return 0
        fi
    done
    return 1
}

# GNU timeout puts the hook in a process group of its own and signals the whole group;
# busybox's does neither, and is a symbolic link to busybox, hence the -L test.
find_command timeout
timeout_bin=$found
[ -n "$timeout_bin" ] && [ -L "$timeout_bin" ] && timeout_bin=
setsid=
[ -z "$timeout_bin" ] && command -v setsid >/dev/null 2>&1 && setsid=setsid

# After a timeout: TERM again, then KILL, to whatever is left of process group $1 (some of
# a hook may have ignored TERM while its main process died).
kill_group() {
    kill -TERM "$1" 2>/dev/null || return 0
    n=0
    while [ $n -lt 50 ] && kill -0 "$1" 2>/dev/null; do sleep 0.1 2>/dev/null || sleep 1; n=$((n + 1)); done
    kill -KILL "$1" 2>/dev/null
}

# hooks.contain: each attempt of a hook runs in a cgroup (v2) of its own, under this
# run's cgroup $cg_run, so that its timeout kills all of it, a child that left the
# process group with setsid included. Sets $cg_run, or $cg_problem and returns 1 when
# the host does not allow it: no cgroup v2, or none the remote user may write.
find_cgroup() {
    cg_mnt= cg_path=
    while read -r _dev mnt kind _rest; do
        [ "$kind" = cgroup2 ] && cg_mnt=$mnt && break
    done </proc/self/mounts
    while IFS= read -r line; do
        case $line in 0::*) cg_path=${line#0::} ;; esac
    done </proc/self/cgroup
    if [ -z "$cg_mnt" ] || [ -z "$cg_path" ]; then
        cg_problem="this host has no cgroup v2 (unified) hierarchy"
        return 1
    fi
    cg_here=${cg_mnt%/}${cg_path%/}
    # Moving a process needs the cgroup it leaves writable, as well as the new one.
    if [ ! -w "$cg_here/cgroup.procs" ] || ! mkdir "$cg_here/deployer-$id.$$" 2>/dev/null; then
        cg_problem="the cgroup $cg_here is not writable by ${USER:-the remote user}: delegate one (systemd's Delegate=) or run without hooks.contain"
        return 1
    fi
    cg_run=$cg_here/deployer-$id.$$
}

# KILLs every process in cgroup $1 (cgroup.kill where the kernel has it, 5.14 on), and
# waits (bounded) until it is empty, so its directory can go.
kill_cgroup() {
    [ -e "$1/cgroup.kill" ] && printf '1\n' >"$1/cgroup.kill" 2>/dev/null
    n=0
    while [ $n -lt 50 ]; do
        left=
        while IFS= read -r member; do
            left=1
            kill -KILL "$member" 2>/dev/null
        done <"$1/cgroup.procs"
        [ -z "$left" ] && return 0
        sleep 0.1 2>/dev/null || sleep 1
        n=$((n + 1))
    done
}

# Runs one attempt of the hook in a process group of its own, output to $log, stdin from
# /dev/null, and waits for the hook's own process (not for its output to close: a daemon
# started in the background keeps the log open, never our channel). Past $h_timeout its
# whole group is killed: TERM, then KILL 5 seconds later if anything of it is left.
run_once() {
    # A script hook is "./path [args]" (run_hook checked the path): the shell runs it with
    # its arguments as written in the spec, like any command.
    set -- sh -c "$h_cmd"
    h_cg=
    if [ "$h_contain" = 1 ]; then
        # The hook's first process moves itself into its cgroup, then becomes the hook:
        # one exec more, no fork; whatever the hook starts is born inside.
        h_cg=$cg_run/$step.$attempts
        mkdir "$h_cg" 2>/dev/null
        set -- sh -c 'printf "%s\n" "$$" >"$0/cgroup.procs" && exec "$@"' "$h_cg" "$@"
    fi
    if [ -n "$timeout_bin" ]; then
        (cd "$h_dir" && exec "$timeout_bin" -k 5 "$h_timeout" "$@") </dev/null 3<&- >>"$log" 2>&1 &
        pid=$!
        wait_for "$pid"
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            timed_out=1
            kill_group "-$pid"
        fi
    else
        flag=$records/$id.$step.timeout
        (cd "$h_dir" && exec $setsid "$@") </dev/null 3<&- >>"$log" 2>&1 &
        pid=$!
        if [ -n "$setsid" ]; then group=-$pid; else group=$pid; fi
        (
            trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
            sleep "$h_timeout" &
            sleeper=$!
            wait "$sleeper" || exit 0
            : >"$flag"
            kill_group "$group"
        ) </dev/null >/dev/null 2>&1 &
        watchdog=$!
        wait_for "$pid"
        if [ -e "$flag" ]; then
            wait "$watchdog"
            rm -f "$flag"
            timed_out=1
            [ "$rc" -eq 0 ] && rc=124
        else
            kill -TERM "$watchdog" 2>/dev/null
            wait "$watchdog" 2>/dev/null
        fi
    fi
    if [ -n "$h_cg" ]; then
        # Only at the timeout: a daemon a start hook leaves running is meant to stay (its
        # cgroup then stays too, until it ends).
        [ "$timed_out" = 1 ] && kill_cgroup "$h_cg"
        rmdir "$h_cg" 2>/dev/null
    fi
    if [ "$timed_out" = 1 ]; then
        printf '[deployer] %s timed out after %ss: killed with its children\n' "$step" "$h_timeout" >>"$log"
    fi
    return "$rc"
}

# Sets $rc to process $1's exit status. A trapped signal interrupts `wait`: wait again
# while the process is still there.
wait_for() {
    while :; do
        wait "$1"
        rc=$?
        kill -0 "$1" 2>/dev/null || break
    done
}

# run_hook <dir> <command> <timeout> <retries> <interval> <script>: the hook's attempts.
run_hook() {
    h_dir=$1 h_cmd=$2 h_timeout=$3 h_retries=$4 h_interval=$5 h_script=$6
    DEPLOY_RELEASE_DIR=$h_dir
    attempts=0 timed_out=0
    if [ "$h_script" = 1 ]; then
        h_cmd=./${h_cmd#./}
        h_path=${h_cmd%% *}
        if [ ! -f "$h_dir/$h_path" ]; then
            printf '[deployer] hook script %s is not in %s\n' "$h_path" "$h_dir" >>"$log"
            attempts=1
            return 127
        elif [ ! -x "$h_dir/$h_path" ]; then
            printf '[deployer] hook script %s in %s is not executable\n' "$h_path" "$h_dir" >>"$log"
            attempts=1
            return 126
        fi
    fi
    while :; do
        attempts=$((attempts + 1))
        timed_out=0
        run_once
        rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$attempts" -gt "$h_retries" ] && return "$rc"
        printf '[deployer] attempt %s exited %s; next attempt in %ss\n' "$attempts" "$rc" "$h_interval" >>"$log"
        sleep "$h_interval"
    done
}

# The result of a hook the controller ran (kind `c`): the listener wrote the controller's
# `done <exit> <attempts> [timeout]` to <id>.reply and ended. No reply means the
# controller went away before telling: the step failed.
take_result() {
    attempts=1 timed_out=0 reply=
    wait_for "$listener"
    listener=
    [ -f "$records/$id.reply" ] && IFS= read -r reply <"$records/$id.reply"
    rm -f "$records/$id.reply"
    set -- $reply
    case $1:$2 in
    done:[0-9] | done:[0-9][0-9] | done:[0-9][0-9][0-9]) start_listener ;;
    *)
        printf '[deployer] %s: the controller went away before telling how its hook ended\n' "$step" >>"$log"
        return 1
        ;;
    esac
    case $3 in '' | *[!0-9]*) ;; *) attempts=$3 ;; esac
    [ "$4" = timeout ] && timed_out=1
    printf '[deployer] %s ran on the controller: exit %s\n' "$step" "$2" >>"$log"
    return "$2"
}

# hook_step <step> <dir> <cmd> <timeout> <retries> <interval> <kind> <contain>: a whole hook step.
hook_step() {
    [ -n "$3" ] || return 0
    h_contain=$8 hooked=1
    if [ "$7" = c ]; then
        say "@@env DEPLOY_VERSION $DEPLOY_VERSION"
        say "@@env DEPLOY_PREVIOUS_VERSION $DEPLOY_PREVIOUS_VERSION"
        say "@@env DEPLOY_RELEASE_DIR $2"
        begin "$1"
        take_result
    else
        begin "$1"
        run_hook "$2" "$3" "$4" "$5" "$6" "$7"
    fi
    rc=$?
    if [ "$timed_out" = 1 ]; then finish "$rc" "$attempts" timeout; else finish "$rc" "$attempts"; fi
    # Once the old release was stopped, an abort no longer holds: the host goes on to start.
    [ "$1" = stop ] && committed=1
    if [ "$rc" -ne 0 ]; then
        if [ "$1" = stop ] && [ "$ignore_stop" = 1 ]; then return 0; fi
        fail "$rc"
    fi
}

# Whether file $1 records the artifact's sha256.
has_sha() {
    [ -f "$1" ] && IFS= read -r recorded <"$1" && [ "$recorded" = "$sha" ]
}

# Sets $receive_error to why the artifact's $1 bytes on stdin could not be written to
# $file, or empties it. Should the disk fill, head stops with bytes still unread: the
# driver then fails at once and reads nothing more, so no byte of the artifact is ever
# taken for a line; the controller, its channel closed, reads the driver's last words.
# The file is emptied, to give the space back.
receive() {
    receive_error=
    err=$(LC_ALL=C head -c "$1" 2>&1 >"$file") && return 0
    : >"$file" 2>/dev/null
    case $err in
    *"No space left"* | *"Disk quota exceeded"*)
        tenths=$((($1 * 10 + 524288) / 1048576))
        receive_error="no space left on $DEPLOY_HOST under $target while receiving the artifact ($((tenths / 10)).$((tenths % 10)) MB)"
        ;;
    *) receive_error="cannot write the artifact to $file: ${err##*: }" ;;
    esac
}

# Puts the release in releases/$dir: already there, copied from a release with the same
# sha256, or sent by the controller. Sets $upload_error and returns non-zero on failure.
#
# A release the host lacks unpacks straight into releases/$dir, with no rename after (it
# is not live): the run claims that directory with a plain mkdir, which fails if another
# run made it first. Until the release is whole its .deploy-sha256 says
# `unpacking <id> <pid>` and $unpacking names it, so that cleanup removes it, if the run
# stops, only while it still is this run's. The .deploy-version and the sha256, written
# once it is unpacked, say it is whole. A release there already with other content (or
# left half-made) is rebuilt beside it, in .tmp-<id>, and renamed over it; so is a copy.
upload() {
    rel=$target/releases/$dir
    tmp=$target/releases/.tmp-$id
    upload_error=
    if [ -z "$sha" ]; then
        [ -f "$rel/.deploy-version" ] && return 0
        upload_error="release $version is not on the host and no artifact was given"
        [ -d "$rel" ] && upload_error="release $version is on the host only half-unpacked (no .deploy-version) and no artifact was given"
        return 1
    fi
    if has_sha "$rel/.deploy-sha256"; then
        printf '[deployer] release %s is already on the host\n' "$version" >>"$log"
        return 0
    fi
    made_temporary=1
    # A run of this deployment that stopped half-way may have left one.
    [ -e "$tmp" ] && LC_ALL=C rm -rf "$tmp"
    same=
    for other in "$target"/releases/*/.deploy-sha256; do
        has_sha "$other" && same=${other%/.deploy-sha256} && break
    done
    into=$tmp
    if [ -n "$same" ]; then
        printf '[deployer] copying %s, which has the same content\n' "$same" >>"$log"
        cp -Rp "$same" "$tmp" >>"$log" 2>&1 || { upload_error="cannot copy $same"; return 1; }
    else
        file=$records/$id.artifact.tar.gz
        # GNU head -c reads exactly the bytes it is asked for and not one more, so the
        # artifact can come on this channel, between two of the controller's lines. Other
        # heads may read ahead into the lines that follow: the controller then writes the
        # file through a channel of its own. Busybox's and toybox's heads are symbolic
        # links to one multi-call binary, GNU's is not: told without running it.
        how=file
        find_command head && [ ! -L "$found" ] && how=stdin
        say "@@need-artifact $file $how"
        ask
        case $how:$reply in
        "stdin:data "*)
            bytes=${reply#data }
            case $bytes in '' | *[!0-9]*)
                upload_error="the controller said something unexpected: $reply"
                return 1
                ;;
            esac
            receive "$bytes"
            if [ -n "$receive_error" ]; then
                upload_error=$receive_error
                return 1
            fi
            # `sent` follows the bytes; EOF instead means the controller went away mid-way.
            ask
            ;;
        esac
        case $reply in
        sent) ;;
        "sent go")
            # The host's wave runs already: its go came right behind the artifact. From
            # here the listener takes the controller's lines, so that an abort that
            # comes during the unpack, however long, is noted before the first step.
            ask
            take_go
            ;;
        *)
            upload_error="the artifact was not sent ($reply)"
            return 1
            ;;
        esac
        # (Not when `current` points to a missing releases/$dir: it would show the release
        # half-made. Then the rename below makes it appear whole, at once.)
        if [ ! -e "$rel" ] && [ ! -L "$rel" ] && { [ -n "$cur" ] || [ ! -L "$target/current" ]; } &&
            LC_ALL=C mkdir "$rel" 2>/dev/null; then
            into=$rel unpacking=$rel
            printf 'unpacking %s %s\n' "$id" "$$" >"$rel/.deploy-sha256"
            err=
        else
            err=$(LC_ALL=C mkdir "$tmp" 2>&1)
        fi
        # No checksum here: SSH authenticates every byte on the way, and gzip checks its
        # CRC-32 and length as tar unpacks (a short or damaged file fails there).
        [ -z "$err" ] && err=$(LC_ALL=C tar -x -o -z -f "$file" -C "$into" 2>&1) || {
            # GNU tar tells a full disk as a short write: "Wrote only 4608 of 10240 bytes".
            case $err in
            *"No space left"* | *"Disk quota exceeded"* | *"Wrote only "*)
                upload_error="no space left on $DEPLOY_HOST under $target while unpacking the artifact"
                ;;
            *) upload_error="cannot unpack the artifact into $into" ;;
            esac
            printf '%s\n' "$err" >>"$log"
            return 1
        }
        [ -n "$err" ] && printf '%s\n' "$err" >>"$log"
        : >"$file"
    fi
    if [ -n "$unpacking" ] && ! still_unpacking; then
        # Another run put its own release here meanwhile (it found this one half-made):
        # this run's files went with the directory it replaced, and its own stays.
        unpacking=
        upload_error="another deployment replaced $rel while this one unpacked it"
        return 1
    fi
    printf '%s\n' "$version" >"$into/.deploy-version"
    printf '%s\n' "$sha" >"$into/.deploy-sha256"
    unpacking=
    [ "$into" = "$rel" ] && return 0
    if [ -e "$rel" ]; then
        if [ "$dir" = "$cur" ]; then
            upload_error="release $version is live on the host with other content; deploy it under a new version"
            return 1
        fi
        LC_ALL=C mv "$rel" "$target/releases/.old-$id" >>"$log" 2>&1 || { upload_error="cannot replace $rel"; return 1; }
    fi
    LC_ALL=C mv "$tmp" "$rel" >>"$log" 2>&1 || { upload_error="cannot move the release into $rel"; return 1; }
    [ -e "$target/releases/.old-$id" ] && LC_ALL=C rm -rf "$target/releases/.old-$id"
    return 0
}

# Whether the host's ln replaces a link atomically: GNU ln from coreutils 8.27 on makes the
# new link under a temporary name and renames it over the old one (others remove the old
# one first). Busybox's and toybox's ln are symbolic links to one multi-call binary, told
# without running them. Asking (ln --version) costs a process: the answer is kept in
# $records/.tool-ln as `yes <path>` or `no <path>`, and emptied when ln fails (switch),
# so that an ln replaced at that path is asked again.
atomic_ln() {
    find_command ln && [ ! -L "$found" ] || return 1
    known=
    [ -f "$records/.tool-ln" ] && IFS= read -r known <"$records/.tool-ln"
    case $known in
    "yes $found") return 0 ;;
    "no $found") return 1 ;;
    esac
    known=no
    release=$(LC_ALL=C "$found" --version 2>/dev/null)
    release=${release%%"$newline"*}
    case $release in "ln (GNU coreutils) "*)
        release=${release#"ln (GNU coreutils) "}
        major=${release%%.*} minor=${release#*.}
        minor=${minor%%[!0-9]*}
        case $major.$minor in *[!0-9.]* | .* | *.) ;; *)
            { [ "$major" -gt 8 ] || { [ "$major" -eq 8 ] && [ "$minor" -ge 27 ]; }; } && known=yes
            ;;
        esac
        ;;
    esac
    printf '%s %s\n' "$known" "$found" >"$records/.tool-ln"
    [ "$known" = yes ]
}

# The atomic switch: `current` is replaced by a link to the new release in one rename,
# never missing in between: by ln itself where it can (atomic_ln), else a new link
# under a temporary name, renamed over `current` by mv -T.
switch() {
    if atomic_ln; then
        LC_ALL=C ln -sfT "releases/$dir" "$target/current" || { : >"$records/.tool-ln"; return 1; }
    else
        link=$target/.current-$id
        [ -L "$link" ] && LC_ALL=C rm -f "$link"
        LC_ALL=C ln -s "releases/$dir" "$link" && LC_ALL=C mv -T "$link" "$target/current" || return 1
    fi
    # Dates the switch for list_releases, without touch(1).
    printf '%s\n' "$version" >"$target/releases/$dir/.deploy-version"
    # The go message carries the time: one process less than date(1). Given none (a go
    # that came with the artifact, before the unpack) or anything else, or when hooks ran
    # between the go and the switch, the host's clock says.
    [ "$hooked" = 1 ] && when=
    case $when in
    '' | *[!0-9TZ:-]*) when=$(LC_ALL=C date -u +%Y-%m-%dT%H:%M:%SZ) ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$when" "$version" "$id" "$who" >>"$target/revisions.log"
}

# Deletes the releases the controller chose ($doomed: 1-based positions in the list sent
# at staging), never the current release nor the one before it, with one rm.
prune() {
    doomed=" $doomed "
    set --
    position=0
    while IFS= read -r name; do
        position=$((position + 1))
        case $doomed in *" $position "*) ;; *) continue ;; esac
        [ -n "$name" ] && [ "$name" != "$cur" ] && [ "$name" != "$prev" ] || continue
        said="$said[deployer] removing release $name$newline"
        set -- "$@" "$target/releases/$name"
    done <"$records/$id.releases"
    printf '%s' "$said" >>"$log"
    [ $# -eq 0 ] || LC_ALL=C rm -rf "$@"
}

# Keeps the records of the newest 20 finished deployments (this one counted), and always
# those of deployments that did not finish (the last state line `running`: going on, or
# interrupted) or whose outcome the controller does not know yet ($keep_ids): `deploy
# reconcile` reads them. Runs once there are more than 30 (counted with a glob, no
# process), so the listing runs once every ten deployments, not each time.
prune_records() {
    set -- "$records"/*.state
    [ $# -gt 30 ] || return 0
    kept=1
    ls -1t "$records" | sed -n 's/\.state$//p' | while IFS= read -r old; do
        [ -n "$old" ] && [ "$old" != "$id" ] || continue
        case $keep_ids in *" $old "*) continue ;; esac
        last=running
        while IFS= read -r line; do [ -n "$line" ] && last=$line; done <"$records/$old.state"
        case $last in running*) continue ;; esac
        if [ "$kept" -lt 20 ]; then kept=$((kept + 1)); else rm -f "$records/$old".*; fi
    done
}

case $target in
"~") target=$HOME ;;
"~/"*) target=$HOME/${target#"~/"} ;;
"~"*) step=$first_step && fail 2 "target $target: only ~ and ~/path are understood" ;;
/*) ;;
*) target=$HOME/$target ;;
esac
# Behind the spec's checks, a second line of defence: never work in / or the remote
# user's home itself, whatever path (`/./`, a symbolic link) leads there. cd -P, no process.
if cd -P "$target" 2>/dev/null; then
    real=$PWD home_real=
    [ -n "$HOME" ] && cd -P "$HOME" 2>/dev/null && home_real=$PWD
    cd /
    if [ "$real" = / ] || [ "$real" = "$home_real" ]; then
        step=$first_step
        fail 2 "target $target is $real on this host, which is / or the home directory: give the app its own directory"
    fi
fi
say "@@hello $PROTOCOL"
records=$target/.deploy
if [ ! -d "$records" ]; then
    # A host's first deployment: one mkdir for the records and the releases.
    set -- "$records"
    if [ "$kind" != restart ]; then
        set -- "$records" "$target/releases"
    fi
    if ! err=$(LC_ALL=C mkdir -p "$@" 2>&1); then
        step=$first_step
        records=
        # mkdir says why once per directory: its first line says it all.
        err=${err%%"$newline"*}
        fail 1 "${err#mkdir: }"
    fi
fi
state=$records/$id.state
exec 2>>"$records/$id.driver.err"
for note in "$records/$id.stop" "$records/$id.reply"; do [ -e "$note" ] && rm -f "$note"; done
step=$first_step
if [ -e "$target/current" ] && [ ! -L "$target/current" ]; then
    fail 1 "$target/current is not a symbolic link; move it away"
fi
cg_run=
case $stop_contain$bi_contain$ai_contain$start_contain$val_contain in *1*)
    find_cgroup || fail 125 "hooks.contain is not available on this host: $cg_problem"
    ;;
esac
read_current
prev=$cur
version_of "$prev"
DEPLOY_PREVIOUS_VERSION=$v
say "@@previous $prev"

# Phase 1, staging: the release unpacked beside the live one; nothing live changes.
if [ "$kind" = restart ]; then
    [ -n "$cur" ] || fail 1 "nothing to restart: $target/current does not exist"
    here=$target/releases/$cur
    version_of "$cur"
    DEPLOY_VERSION=$v
else
    here=$target/releases/$dir
    [ -d "$target/releases" ] || LC_ALL=C mkdir -p "$target/releases"
    # The kept releases, listed before the upload: the controller picks what to prune as
    # it sends the artifact, with the go right behind it for a host in its wave. With no
    # more releases than the spec keeps, the new one counted, there is nothing to prune:
    # no listing. (The glob's trailing slash matches directories only.)
    set -- "$target"/releases/*/
    [ -e "$1" ] || set --
    [ -d "$here" ] || set -- "$@" "$here"
    if [ $# -gt "$keep" ]; then
        list_releases "$target/releases" >"$records/$id.releases"
        while IFS= read -r name; do say "@@release $name"; done <"$records/$id.releases"
    fi
    begin upload
    upload
    rc=$?
    finish "$rc"
    [ "$rc" -eq 0 ] || fail "$rc" "$upload_error"
fi
say "@@staged"
put_state "staged $$"
if [ -z "$went" ]; then
    ask
    take_go
fi

# Phase 2, the wave: every step without waiting; the listener takes `stop` and results.
if [ -n "$prev" ]; then
    hook_step stop "$target/releases/$prev" "$stop_cmd" "$stop_timeout" "$stop_retries" "$stop_interval" "$stop_script" "$stop_contain"
fi
if [ "$kind" != restart ]; then
    hook_step before_install "$here" "$bi_cmd" "$bi_timeout" "$bi_retries" "$bi_interval" "$bi_script" "$bi_contain"
    hook_step after_install "$here" "$ai_cmd" "$ai_timeout" "$ai_retries" "$ai_interval" "$ai_script" "$ai_contain"
    begin switch
    made_temporary=1
    switch >>"$log" 2>&1
    rc=$?
    finish "$rc"
    [ "$rc" -eq 0 ] || fail "$rc" "cannot switch $target/current to releases/$dir"
    committed=1
    cur=$dir
fi
hook_step start "$here" "$start_cmd" "$start_timeout" "$start_retries" "$start_interval" "$start_script" "$start_contain"
hook_step validate "$here" "$val_cmd" "$val_timeout" "$val_retries" "$val_interval" "$val_script" "$val_contain"
# The controller chose from the list sent at staging; if `current` moved since (another
# run switched it), that choice no longer holds: nothing is pruned.
if [ -n "$doomed" ] && [ "$kind" != restart ]; then
    begin prune
    if [ "$expected" = "$prev" ]; then
        prune
    else
        said="[deployer] current was $expected at staging, $prev now: nothing pruned$newline"
        printf '%s' "$said" >>"$log"
    fi
    finish 0
fi
prune_records
step=
leave succeeded
