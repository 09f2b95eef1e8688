/* SPDX-License-Identifier: MIT */
/*
 * The network role: how the host reaches the DUT (for SSH) and how its uplink is cut.
 *   host:   a fixed address or name, or the DUT's lease in a dnsmasq lease file; cut and
 *           restore are commands from the rig file (a managed switch, an iptables rule),
 *           or VBUS of the hub port a USB network adapter in the uplink hangs on, switched
 *           by the uhub power back-end's code (rig_hubport_*(), drivers/uhub.c).
 *   vboard: the virtual board (testcases/virtual/rigor-vboard --net): a line protocol on a
 *           unix socket; the board forwards a loopback port to the guest's SSH server and
 *           switches the guest's NIC link through QMP.
 *   sim:    a fixed address, the cut only recorded; for rig files and tests without a DUT.
 */
#define _GNU_SOURCE 1 /* pipe2 */
#define LOG_PREFIX "network"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../internal.h"

#define DEFAULT_PORT 22222   /* balenaOS's SSH port, and the rigor test OS's */

struct net_conf {
	char *address;
	int port;
	char *lease_file;
	char *mac;
	char *cut;
	char *restore;
	char *uplink_hub;        /* ...or the hub port of a USB network adapter */
	char *uplink_hub_serial;
	int uplink_port;
	char *path;      /* vboard */
};

struct host_priv {
	bool hub;                /* the uplink is switched at a hub port */
	struct rig_hubport uplink;
};

struct sim_priv {
	bool cut;
};

static int copy_host(struct rig_part *p, char *host, size_t len, const char *s)
{
	if (strlen(s) >= len)
		return rig_part_fail(p, RIG_E_INVAL, "address '%s' is too long", s);
	memcpy(host, s, strlen(s) + 1);
	return 0;
}

static int conf_port(const struct net_conf *c)
{
	return c->port > 0 ? c->port : DEFAULT_PORT;
}

/* ---- host ---- */

/*
 * dnsmasq's lease file: "<expiry> <mac> <ip> <hostname> <client-id>" per line. The lease
 * with the latest expiry wins: a DUT that was given a new address keeps its old line until
 * that one expires.
 */
static int lease_lookup(struct rig_part *p, const struct net_conf *c, char *host, size_t len)
{
	FILE *f = fopen(c->lease_file, "r");
	char line[512], best[64] = "";
	long long best_exp = -1;

	if (!f)
		return rig_part_fail(p, errno == ENOENT ? RIG_E_NOENT : RIG_E_IO,
				     "cannot read the lease file '%s': %s", c->lease_file, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		long long exp;
		char mac[64], ip[64];

		if (sscanf(line, "%lld %63s %63s", &exp, mac, ip) == 3 && !strcasecmp(mac, c->mac) &&
		    exp >= best_exp) {
			best_exp = exp;
			snprintf(best, sizeof(best), "%s", ip);
		}
	}
	fclose(f);
	if (!best[0])
		return rig_part_fail(p, RIG_E_NOENT,
				     "no lease for %s in '%s' (has the DUT asked for an address yet?)",
				     c->mac, c->lease_file);
	return copy_host(p, host, len, best);
}

/* The uplink's hub port, if the rig file names one: found and checked now, as power = uhub. */
static int host_open_hub(struct rig_part *p)
{
	const struct net_conf *c = p->conf;
	struct host_priv *pv = p->priv;
	const struct rig_hubport_conf hc = {
		.hub = c->uplink_hub, .serial = c->uplink_hub_serial, .port = c->uplink_port,
		.hub_key = "uplink_hub", .serial_key = "uplink_hub_serial", .port_key = "uplink_port",
	};

	if (!c->uplink_hub && !c->uplink_hub_serial && !c->uplink_port)
		return 0;
	if (c->cut)
		return rig_part_fail(p, RIG_E_INVAL,
				     "give either cut and restore commands or uplink_hub (or uplink_hub_serial) with uplink_port, not both");
	if (!c->uplink_port && (c->uplink_hub || c->uplink_hub_serial))
		return rig_part_fail(p, RIG_E_INVAL,
				     "%s needs uplink_port = N: the port of that hub the USB network adapter is on (1-based, as uhubctl -p counts)",
				     c->uplink_hub ? "uplink_hub" : "uplink_hub_serial");
	pv->hub = true;
	return rig_hubport_init(p, &pv->uplink, &hc,
				rig_ctx_clamp(rig_part_ctx(p), p->common.timeout_ms));
}

static int host_open(struct rig_part *p)
{
	const struct net_conf *c = p->conf;

	if (!c->address == !c->lease_file)
		return rig_part_fail(p, RIG_E_INVAL,
				     "give either address = \"...\" (an address or name) or lease_file = \"...\" with mac = \"...\"");
	if (c->lease_file && !c->mac)
		return rig_part_fail(p, RIG_E_INVAL, "lease_file needs the DUT's mac = \"xx:xx:xx:xx:xx:xx\"");
	if (!c->cut != !c->restore)
		return rig_part_fail(p, RIG_E_INVAL, "give both cut and restore commands, or neither");
	return host_open_hub(p);
}

static int host_address(struct rig_part *p, char *host, size_t len, int *port, int timeout_ms)
{
	const struct net_conf *c = p->conf;

	(void)timeout_ms;
	*port = conf_port(c);
	if (c->lease_file)
		return lease_lookup(p, c, host, len);
	return copy_host(p, host, len, c->address);
}

/*
 * Run @cmd with sh -c in its own process group, within @timeout_ms (then the group is
 * killed), keeping the end of its output for the error message.
 */
static int run_command(struct rig_part *p, const char *what, const char *cmd, int timeout_ms)
{
	struct rig_ctx *ctx = rig_part_ctx(p);
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	char out[400];
	size_t n = 0;
	int fds[2], status = 0, rc = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return rig_part_fail(p, RIG_E_IO, "%s: cannot run '%s': %s", what, cmd, strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return rig_part_fail(p, RIG_E_IO, "%s: cannot run '%s': %s", what, cmd, strerror(errno));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(fds[1]);
	for (;;) {
		int left = rig_deadline_left_ms(d);
		char buf[256];
		ssize_t r;

		rc = rig_ctx_poll(ctx, fds[0], POLLIN, left);
		if (rc < 0)
			break;
		r = read(fds[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		/* keep the last sizeof(out) - 1 bytes */
		for (ssize_t i = 0; i < r; i++) {
			if (n == sizeof(out) - 1) {
				memmove(out, out + 1, n - 1);
				n--;
			}
			out[n++] = buf[i] == '\n' ? ' ' : buf[i];
		}
	}
	close(fds[0]);
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = 0;
	if (rc < 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (rc == RIG_E_TIMEOUT)
			return rig_part_fail(p, rc, "%s: '%s' did not finish within %d ms", what, cmd,
					     timeout_ms);
		return rig_part_fail(p, rc, "%s: '%s' interrupted", what, cmd);
	}
	waitpid(pid, &status, 0);
	kill(-pid, SIGKILL);   /* whatever it left behind in its group */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return rig_part_fail(p, RIG_E_IO, "%s: '%s' failed (%s %d)%s%s", what, cmd,
			     WIFEXITED(status) ? "exit status" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     n ? ": " : "", out);
}

static int host_uplink(struct rig_part *p, bool up, int timeout_ms)
{
	const struct net_conf *c = p->conf;
	const struct host_priv *pv = p->priv;

	if (pv->hub)
		return rig_hubport_set(p, &pv->uplink, up, timeout_ms);
	if (!c->cut)
		return rig_part_fail(p, RIG_E_NOTSUP,
				     "cannot %s the uplink: the network entry gives no way (add cut = \"...\" and restore = \"...\" commands, or uplink_hub = \"1-1\" and uplink_port = N for a USB network adapter on a switchable hub port)",
				     up ? "restore" : "cut");
	return run_command(p, up ? "restore" : "cut", up ? c->restore : c->cut, timeout_ms);
}

/* ---- vboard ---- */

/* One request line, one answer line ("ok ..." or "error <why>") on a new connection. */
static int vboard_ask(struct rig_part *p, const char *req, char *ans, size_t len, int timeout_ms)
{
	const struct net_conf *c = p->conf;
	struct rig_ctx *ctx = rig_part_ctx(p);
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = 0;
	int fd, rc;

	if (strlen(c->path) >= sizeof(sa.sun_path))
		return rig_part_fail(p, RIG_E_INVAL, "socket path '%s' is too long", c->path);
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rig_part_fail(p, RIG_E_IO, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return rig_part_fail(p, RIG_E_NODEV,
				     "the virtual board does not answer at '%s': %s (is it running? scripts/virtual-rig start)",
				     c->path, strerror(e));
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		close(fd);
		return rig_part_fail(p, RIG_E_IO, "cannot write to '%s': %s", c->path, strerror(errno));
	}
	for (;;) {
		ssize_t r;

		rc = rig_ctx_poll(ctx, fd, POLLIN, rig_deadline_left_ms(d));
		if (rc < 0)
			break;
		r = recv(fd, ans + n, len - 1 - n, 0);
		if (r <= 0) {
			rc = rig_part_fail(p, RIG_E_PROTO, "the virtual board at '%s' closed without an answer to '%.*s'",
					   c->path, (int)strcspn(req, "\n"), req);
			break;
		}
		n += (size_t)r;
		ans[n] = 0;
		if (strchr(ans, '\n') || n == len - 1) {
			ans[strcspn(ans, "\n")] = 0;
			rc = 0;
			break;
		}
	}
	close(fd);
	if (rc == RIG_E_TIMEOUT)
		return rig_part_fail(p, rc, "the virtual board at '%s' did not answer within %d ms",
				     c->path, timeout_ms);
	if (rc < 0)
		return rc;
	if (strncmp(ans, "ok", 2) != 0)
		return rig_part_fail(p, RIG_E_IO, "the virtual board refused '%.*s': %s",
				     (int)strcspn(req, "\n"), req, ans);
	return 0;
}

static int vboard_address(struct rig_part *p, char *host, size_t len, int *port, int timeout_ms)
{
	char ans[300], h[256];
	int rc = vboard_ask(p, "address\n", ans, sizeof(ans), timeout_ms);

	if (rc < 0)
		return rc;
	if (sscanf(ans, "ok %255s %d", h, port) != 2 || *port <= 0 || *port > 65535)
		return rig_part_fail(p, RIG_E_PROTO, "the virtual board's address answer is '%s'", ans);
	return copy_host(p, host, len, h);
}

static int vboard_uplink(struct rig_part *p, bool up, int timeout_ms)
{
	char ans[300];

	return vboard_ask(p, up ? "up\n" : "down\n", ans, sizeof(ans), timeout_ms);
}

/* ---- sim ---- */

static int sim_address(struct rig_part *p, char *host, size_t len, int *port, int timeout_ms)
{
	const struct net_conf *c = p->conf;

	(void)timeout_ms;
	*port = conf_port(c);
	return copy_host(p, host, len, c->address ? c->address : "127.0.0.1");
}

static int sim_uplink(struct rig_part *p, bool up, int timeout_ms)
{
	struct sim_priv *s = p->priv;

	(void)timeout_ms;
	s->cut = !up;
	return 0;
}

/* ---- tables ---- */

#define O(f) offsetof(struct net_conf, f)
static const struct rig_param host_params[] = {
	{ "address", RIG_P_STR, O(address), false, "the DUT's address or name (192.168.7.20, dut.local)" },
	{ "port", RIG_P_INT, O(port), false, "its SSH port (default 22222)" },
	{ "lease_file", RIG_P_STR, O(lease_file), false, "a dnsmasq lease file that has the DUT's address" },
	{ "mac", RIG_P_STR, O(mac), false, "the DUT's MAC address, looked up in lease_file" },
	{ "cut", RIG_P_STR, O(cut), false, "shell command that cuts the DUT's uplink" },
	{ "restore", RIG_P_STR, O(restore), false, "shell command that restores it" },
	{ "uplink_hub", RIG_P_STR, O(uplink_hub), false, "...or the location (\"1-1.4\") of a hub whose port powers a USB network adapter in the uplink" },
	{ "uplink_hub_serial", RIG_P_STR, O(uplink_hub_serial), false, "...or that hub's serial number" },
	{ "uplink_port", RIG_P_INT, O(uplink_port), false, "the hub port the adapter is on (1-based); cut switches its VBUS off" },
	RIG_PARAMS_END
};
static const struct rig_param vboard_params[] = {
	{ "path", RIG_P_STR, O(path), true, "the virtual board's network socket (rigor-vboard --net)" },
	RIG_PARAMS_END
};
static const struct rig_param sim_params[] = {
	{ "address", RIG_P_STR, O(address), false, "address address() returns (default 127.0.0.1)" },
	{ "port", RIG_P_INT, O(port), false, "port address() returns (default 22222)" },
	RIG_PARAMS_END
};
#undef O

static const struct rig_network_ops host_ops = { .address = host_address, .uplink = host_uplink };
static const struct rig_network_ops vboard_ops = { .address = vboard_address, .uplink = vboard_uplink };
static const struct rig_network_ops sim_ops = { .address = sim_address, .uplink = sim_uplink };

const struct rig_backend rig_network_host = {
	.role = RIG_ROLE_NETWORK,
	.name = "host",
	.help = "the DUT at a fixed address or name, or by its lease in a dnsmasq lease file; uplink cut/restore by commands or a USB hub port",
	.doc = "docs/hardware/uhub.md",
	.params = host_params,
	.conf_size = sizeof(struct net_conf),
	.priv_size = sizeof(struct host_priv),
	.open = host_open,
	.ops.network = &host_ops,
};

const struct rig_backend rig_network_vboard = {
	.role = RIG_ROLE_NETWORK,
	.name = "vboard",
	.help = "the virtual board's forwarded SSH port and its NIC link switch (rigor-vboard --net)",
	.params = vboard_params,
	.conf_size = sizeof(struct net_conf),
	.ops.network = &vboard_ops,
};

const struct rig_backend rig_network_sim = {
	.role = RIG_ROLE_NETWORK,
	.name = "sim",
	.help = "simulated network path: a fixed address; uplink cut and restore are only recorded",
	.params = sim_params,
	.conf_size = sizeof(struct net_conf),
	.priv_size = sizeof(struct sim_priv),
	.ops.network = &sim_ops,
};
