# Shared by scripts/demo and scripts/test: sourced, not run.

# The top of the source tree, whatever folder the script was started from.
VMI_SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# vmi_build DIR [MESON OPTIONS...]: configures DIR (again, if it exists) and builds it.
vmi_build() {
	local dir=$1
	shift
	if [[ -f $dir/build.ninja ]]; then
		meson setup --reconfigure "$dir" "$VMI_SOURCE_ROOT" "$@"
	else
		meson setup "$dir" "$VMI_SOURCE_ROOT" "$@"
	fi
	meson compile -C "$dir"
}

# vmi_start_bus DIR: starts a private session bus with its socket in DIR and exports its
# address; vmi_stop_all stops it.
vmi_start_bus() {
	local dir=$1
	dbus-daemon --session --nofork --nopidfile --address="unix:path=$dir/bus" \
		--print-address=3 3>"$dir/bus-address" 2>"$dir/bus.log" &
	VMI_BUS_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $dir/bus-address ]] && break
		sleep 0.1
	done
	if [[ ! -s $dir/bus-address ]]; then
		echo "could not start a private D-Bus daemon" >&2
		return 1
	fi
	DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$dir/bus-address")
	export DBUS_SESSION_BUS_ADDRESS
}

# vmi_start_daemon BUILDDIR LOGFILE: starts the built vmimaged on the private bus with the
# built plugins, and waits until it owns its name.
vmi_start_daemon() {
	local build=$1 log=$2
	"$build/daemon/vmimaged" --session --plugin-dir "$build/plugins" >"$log" 2>&1 &
	VMI_DAEMON_PID=$!
	if ! gdbus wait --session --timeout 20 org.vmimaged.VMImage1; then
		echo "vmimaged did not appear on the bus; its log:" >&2
		cat "$log" >&2
		return 1
	fi
}

vmi_stop_all() {
	if [[ -n ${VMI_DAEMON_PID:-} ]]; then
		kill -TERM "$VMI_DAEMON_PID" 2>/dev/null || true
		wait "$VMI_DAEMON_PID" 2>/dev/null || true
		VMI_DAEMON_PID=
	fi
	if [[ -n ${VMI_BUS_PID:-} ]]; then
		kill -TERM "$VMI_BUS_PID" 2>/dev/null || true
		wait "$VMI_BUS_PID" 2>/dev/null || true
		VMI_BUS_PID=
	fi
}
