#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box tests of rigor-backend over HTTP. Prints TAP. Each server is started on a
free port with a temporary state file and stopped (SIGTERM, then SIGKILL) afterwards."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(HERE, "rigor-backend")
USER_KEY = "rigorUserApiKey0000000000000000000"
PROV_KEY = "rigorProvisioningKey00000000000000"

N = 0
FAILED = 0
SERVERS = []


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    if not cond:
        FAILED += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", N, name), flush=True)
    if not cond and diag is not None:
        for line in str(diag).splitlines():
            print("# " + line)
    return cond


class Server:
    def __init__(self, tmp, *extra, state=None):
        self.tmp = tmp
        self.state = state or os.path.join(tmp, "state.json")
        self.port_file = os.path.join(tmp, "port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(os.path.join(tmp, "server.log"), "a")
        self.proc = subprocess.Popen(
            [BACKEND, "--port", "0", "--state", self.state, "--port-file", self.port_file]
            + list(extra), stdout=subprocess.PIPE, stderr=self.log, text=True)
        SERVERS.append(self)
        self.banner = self.proc.stdout.readline().strip()
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("server did not start: %r" % self.banner)
            time.sleep(0.02)
        self.port = int(open(self.port_file).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        if self in SERVERS:
            SERVERS.remove(self)
        return self.proc.returncode

    def req(self, method, path, body=None, key=None, headers=None, form=False, raw=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body)
                h["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body)
                h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        c.close()
        if raw:
            return r.status, text, r
        try:
            val = json.loads(text)
        except ValueError:
            val = text.decode(errors="replace")
        return r.status, val, r

    def get(self, path, key=None, **kw):
        return self.req("GET", path, key=key, **kw)


def q(path, **opts):
    return path + "?" + "&".join("%s=%s" % (k.replace("_", "$", 1) if k.startswith("_") else k,
                                            urllib.parse.quote(v, safe="(),;=$/'"))
                                 for k, v in opts.items())


def new_uuid():
    return os.urandom(16).hex()


def test_basic(tmp):
    h = subprocess.run([BACKEND, "--help"], capture_output=True, text=True)
    ok(h.returncode == 0 and USER_KEY in h.stdout and "rigor/test" in h.stdout
       and "--heartbeat-scale" in h.stdout, "--help documents the built-in seed and options")
    s = Server(tmp)
    ok(s.banner == "rigor-backend: listening on 127.0.0.1:%d" % s.port,
       "prints the listening line and writes --port-file", s.banner)
    hexport = "%04X" % s.port
    listen = [ln.split()[1] for ln in open("/proc/net/tcp").read().splitlines()[1:]
              if ln.split()[3] == "0A"]
    ok("0100007F:" + hexport in listen and not any(a.endswith(":" + hexport) and
                                                    a != "0100007F:" + hexport for a in listen),
       "listens on 127.0.0.1 only")
    st, body, _ = s.get("/ping")
    ok(st == 200 and body == "OK", "GET /ping -> 200 OK", (st, body))
    st, body, _ = s.get("/user/v1/whoami", USER_KEY)
    ok(st == 200 and body.get("username") == "rigor" and body.get("id") == 1,
       "GET /user/v1/whoami with the user API key", body)
    st, body, _ = s.get("/actor/v1/whoami", USER_KEY)
    ok(st == 200 and body.get("actorType") == "user" and body.get("actorTypeId") == 1,
       "GET /actor/v1/whoami (what balena-sdk calls)", body)
    st, _, _ = s.get("/user/v1/whoami")
    ok(st == 401, "whoami without credentials -> 401", st)
    st, _, _ = s.get("/user/v1/whoami", "wrong")
    ok(st == 401, "whoami with an unknown key -> 401", st)
    st, body, _ = s.get("/user/v1/whoami?apikey=" + USER_KEY)
    ok(st == 200 and body.get("username") == "rigor", "apikey query parameter accepted", st)
    st, _, _ = s.get("/user/v1/whoami", PROV_KEY)
    ok(st == 401, "user/v1/whoami with a provisioning key -> 401", st)
    st, body, _ = s.get("/actor/v1/whoami", PROV_KEY)
    ok(st == 200 and body.get("actorType") == "application" and body.get("slug") == "rigor/test",
       "actor/v1/whoami with the provisioning key is the fleet", body)
    st, body, _ = s.req("POST", "/login_", {"username": "rigor", "password": "rigor"})
    st2, who, _ = s.get("/user/v1/whoami", body if isinstance(body, str) else None)
    ok(st == 200 and st2 == 200 and who.get("username") == "rigor",
       "POST /login_ returns a session token usable as Bearer", (st, body, st2))
    st, _, _ = s.req("POST", "/login_", {"username": "rigor", "password": "nope"})
    ok(st == 401, "POST /login_ with a wrong password -> 401", st)
    st, _, _ = s.get("/nope", USER_KEY)
    ok(st == 404, "unknown path -> 404", st)
    return s


def test_odata(s):
    st, body, _ = s.get(q("/v7/application", _filter="slug eq 'rigor/test'",
                          _select="id,slug,app_name"), USER_KEY)
    d = body.get("d") if isinstance(body, dict) else None
    ok(st == 200 and d and d[0]["slug"] == "rigor/test" and set(d[0]) == {"id", "slug", "app_name"},
       "GET /v7/application $filter eq + $select", body)
    app_id = d[0]["id"]
    st, body, _ = s.get(q("/v7/application(%d)" % app_id,
                          _expand="is_for__device_type($select=slug;$expand=is_of__cpu_architecture($select=slug))",
                          _select="id,is_for__device_type"), USER_KEY)
    dt = body["d"][0]["is_for__device_type"] if st == 200 else None
    ok(st == 200 and dt[0]["slug"] == "raspberrypi4-64" and
       dt[0]["is_of__cpu_architecture"][0]["slug"] == "aarch64",
       "GET /v7/application(id) with nested $expand", body)
    st, body, _ = s.get(q("/v6/application", _filter="(slug eq 'rigor/test') or (uuid eq 'rigor/test')",
                          _select="id"), USER_KEY)
    ok(st == 200 and len(body["d"]) == 1, "GET /v6/application with or-filter (as the SDK emits)", body)
    st, body, _ = s.get(q("/v7/application", _filter="slug eq 'rigor/none'"), USER_KEY)
    ok(st == 200 and body == {"d": []}, "no match -> empty d", body)
    st, body, _ = s.get("/v7/application/$count", USER_KEY)
    ok(st == 200 and body == {"d": 2}, "GET /v7/application/$count", body)
    st, _, _ = s.get("/v7/application")
    ok(st == 401, "GET /v7/application without credentials -> 401", st)
    st, body, _ = s.get(q("/v7/device_type", _filter="slug eq 'raspberrypi4-64'",
                          _select="slug,name"))
    ok(st == 200 and body["d"][0]["slug"] == "raspberrypi4-64", "device_type is public", body)
    st, body, _ = s.get(q("/v7/device_type", _filter="device_type_alias/any(dta:dta/is_referenced_by__alias eq 'raspberrypi4-64')",
                          _select="slug", _top="1", _orderby="name asc"))
    ok(st == 200 and [x["slug"] for x in body["d"]] == ["raspberrypi4-64"],
       "device_type alias lambda filter with $top/$orderby", body)
    st, app, _ = s.req("POST", "/v7/application", {"app_name": "Scratch_1", "organization": 1,
                                                    "is_for__device_type": 1}, USER_KEY)
    ok(st == 201 and app.get("slug") == "rigor/scratch_1" and app.get("is_for__device_type") ==
       {"__id": 1}, "POST /v7/application creates a fleet (slug org/lowercased name)", (st, app))
    st2, _, _ = s.req("POST", "/v7/application", {"app_name": "Scratch_1", "organization": 1,
                                                  "is_for__device_type": 1}, USER_KEY)
    st3, _, _ = s.req("POST", "/v7/application", {"app_name": "ab", "organization": 1,
                                                  "is_for__device_type": 1}, USER_KEY)
    st4, _, _ = s.req("POST", "/v7/application", {"app_name": "Scratch_2", "organization": 1,
                                                  "is_for__device_type": 1}, PROV_KEY)
    ok((st2, st3, st4) == (409, 400, 401), "create: duplicate 409, bad name 400, non-user 401",
       (st2, st3, st4))
    st, _, _ = s.req("DELETE", "/v7/application(%d)" % app.get("id", 0), None, USER_KEY)
    st2, body, _ = s.get(q("/v7/application", _filter="slug eq 'rigor/scratch_1'"), USER_KEY)
    ok(st == 200 and body == {"d": []}, "DELETE /v7/application(id) removes it", (st, body))
    st, _, _ = s.get(q("/v7/application", _filter="slug eq"), USER_KEY)
    ok(st == 400, "malformed $filter -> 400", st)
    st, _, _ = s.get("/v7/nonsense", USER_KEY)
    ok(st == 404, "unknown resource -> 404", st)
    return app_id


def test_config_register(s, app_id):
    st, cfg, _ = s.req("POST", "/download-config", {"appId": app_id, "version": "6.0.13",
                                                    "network": "ethernet"}, USER_KEY)
    want = {"applicationId", "deviceType", "userId", "apiEndpoint", "apiKey", "listenPort",
            "vpnEndpoint", "registryEndpoint", "deltaEndpoint", "vpnPort",
            "appUpdatePollInterval", "mixpanelToken"}
    ok(st == 200 and want <= set(cfg) and cfg["applicationId"] == app_id and
       cfg["deviceType"] == "raspberrypi4-64" and cfg["userId"] == 1 and
       cfg["apiEndpoint"] == "http://127.0.0.1:%d" % s.port and cfg["listenPort"] == 48484
       and cfg["apiKey"] != USER_KEY, "POST /download-config returns config.json fields", cfg)
    st, cfg2, _ = s.get("/download-config?appId=%d&version=2.80.3.dev&network=wifi&wifiSsid=lab"
                        "&wifiKey=secret" % app_id, USER_KEY)
    ok(st == 200 and cfg2.get("developmentMode") is True and cfg2.get("wifiSsid") == "lab",
       "GET /download-config with query, .dev version and wifi", cfg2)
    st, _, _ = s.req("POST", "/download-config", {"appId": app_id}, USER_KEY)
    ok(st == 400, "download-config without version -> 400", st)
    st, _, _ = s.req("POST", "/download-config", {"appId": 999, "version": "6.0.13"}, USER_KEY)
    ok(st == 404, "download-config for an unknown fleet -> 404", st)
    st, _, _ = s.req("POST", "/download-config", {"appId": app_id, "version": "6.0.13"})
    ok(st == 401, "download-config without credentials -> 401", st)
    st, _, _ = s.req("POST", "/download-config", {"appId": app_id, "version": "6.0.13"}, PROV_KEY)
    ok(st == 401, "download-config with a provisioning key -> 401", st)

    uuid = new_uuid()
    body = {"application": app_id, "uuid": uuid, "device_type": "raspberrypi4-64",
            "user": 1, "os_version": "balenaOS 6.0.13", "os_variant": "prod",
            "supervisor_version": "16.7.5"}
    st, reg, _ = s.req("POST", "/device/register", body, cfg["apiKey"])
    ok(st == 201 and reg.get("uuid") == uuid and isinstance(reg.get("id"), int) and
       len(reg.get("api_key", "")) >= 16,
       "POST /device/register with the downloaded provisioning key -> 201", (st, reg))
    st, err, _ = s.req("POST", "/device/register", body, cfg["apiKey"])
    ok(st == 409 and "unique" in str(err), "register of a duplicate uuid -> 409", (st, err))
    st, _, _ = s.req("POST", "/device/register", dict(body, uuid=new_uuid()))
    ok(st == 401, "register without credentials -> 401", st)
    st, _, _ = s.req("POST", "/device/register", dict(body, uuid=new_uuid()), "bogus")
    ok(st == 401, "register with an unknown key -> 401", st)
    st, _, _ = s.req("POST", "/device/register", dict(body, uuid=new_uuid(), application=2),
                     cfg["apiKey"])
    ok(st == 403, "register into another fleet with this fleet's provisioning key -> 403", st)
    st, _, _ = s.req("POST", "/device/register", dict(body, uuid="xyz"), cfg["apiKey"])
    ok(st == 400, "register with a malformed uuid -> 400", st)
    # provisioning keys with an expiry (as balena-sdk's device.register and rigor's cloud
    # suite make them): usable until then, refused (401) after; a bad date is a 400
    st, soon, _ = s.req("POST", "/download-config", {
        "appId": app_id, "version": "6.0.13",
        "provisioningKeyExpiryDate": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(time.time() + 600))}, USER_KEY)
    st1, _, _ = s.req("POST", "/device/register", dict(body, uuid=new_uuid()), soon["apiKey"])
    st, late, _ = s.req("POST", "/download-config", {
        "appId": app_id, "version": "6.0.13",
        "provisioningKeyExpiryDate": "2001-01-01T00:00:00+02:00"}, USER_KEY)
    st2, _, _ = s.req("POST", "/device/register", dict(body, uuid=new_uuid()), late["apiKey"])
    st3, err, _ = s.req("POST", "/download-config", {
        "appId": app_id, "version": "6.0.13", "provisioningKeyExpiryDate": "tomorrow"}, USER_KEY)
    ok(st1 == 201 and st2 == 401 and st3 == 400 and "tomorrow" in str(err),
       "provisioning key expiry: before -> 201, after -> 401, not a date -> 400",
       (st1, st2, st3, err))
    uuid2 = new_uuid()
    dkey = os.urandom(16).hex()
    st, reg2, _ = s.req("POST", "/device/register",
                        {"application": str(app_id), "uuid": uuid2, "device_type": "raspberrypi4-64",
                         "api_key": dkey}, PROV_KEY, form=True)
    ok(st == 201 and reg2.get("api_key") == dkey,
       "register form-urlencoded with a client-chosen api_key (OS script style)", (st, reg2))
    st, body2, _ = s.get(q("/v7/device", _filter="uuid eq '%s'" % uuid2, _select="id"), PROV_KEY)
    ok(st == 200 and body2["d"] == [{"id": reg2["id"]}],
       "provisioning key can look up a device of its fleet by uuid", body2)
    newkey = os.urandom(16).hex()
    st, k, _ = s.req("POST", "/api-key/device/%d/device-key" % reg2["id"], {"apiKey": newkey},
                     PROV_KEY)
    st2, who, _ = s.get("/actor/v1/whoami", newkey)
    ok(st == 200 and k == newkey and st2 == 200 and who.get("uuid") == uuid2,
       "key exchange POST /api-key/device/:id/device-key", (st, k, st2, who))
    return uuid, reg


def test_device(s, app_id, uuid, reg):
    dkey = reg["api_key"]
    st, oc, _ = s.get("/os/v1/config/")
    st2, state, _ = s.get("/__rigor/state")
    before = [d.get("os_config_fetched_at") for d in state["device"] if d["uuid"] == uuid]
    st3, oc2, _ = s.get("/os/v1/config", dkey)
    st4, state, _ = s.get("/__rigor/state")
    after = [d for d in state["device"] if d["uuid"] == uuid][0]
    ok(st == 200 and oc.get("schema_version") == "1.0.0" and "openvpn" in oc["services"] and
       "overrides" in oc["config"] and st3 == 200 and oc2 == oc and before == [None] and
       after.get("os_config_fetches") == 1 and after.get("os_config_fetched_at"),
       "GET /os/v1/config: served without credentials; a device-key fetch is recorded",
       (st, oc, st3, before, after))
    st, who, _ = s.get("/actor/v1/whoami", dkey)
    ok(st == 200 and who.get("actorType") == "device" and who.get("uuid") == uuid,
       "actor/v1/whoami with the device key", who)
    st, body, _ = s.get("/v7/device?$select=uuid", dkey)
    ok(st == 200 and body["d"] == [{"uuid": uuid}], "device key sees only its own device", body)
    st, body, _ = s.get(q("/v7/application", _select="id", _expand="owns__device($select=uuid)"), dkey)
    ok(st == 200 and len(body["d"]) == 1 and body["d"][0]["owns__device"] == [{"uuid": uuid}],
       "device key: its fleet, and only itself through the owns__device expansion", body)
    st, body, _ = s.get(q("/v7/application(%d)" % app_id, _select="id",
                          _expand="owns__device/$count"), USER_KEY)
    ok(st == 200 and body["d"][0]["owns__device"] >= 2, "user key: $expand with /$count", body)
    st, body, _ = s.get(q("/v7/device", _filter="belongs_to__application/any(a:a/slug eq 'rigor/test') and is_online eq false",
                          _select="uuid"), USER_KEY)
    ok(st == 200 and uuid in [x["uuid"] for x in body["d"]],
       "filter with any() lambda over belongs_to__application and 'and'", body)
    st, body, _ = s.get(q("/v7/device", _filter="belongs_to__application/slug eq 'rigor/other'",
                          _select="uuid"), USER_KEY)
    ok(st == 200 and body["d"] == [], "navigation path filter excludes other fleets", body)
    st, body, _ = s.get("/v7/device(uuid='%s')" % uuid, USER_KEY)
    d = body["d"][0] if st == 200 and body["d"] else {}
    need = {"is_online", "api_heartbeat_state", "os_version", "supervisor_version", "uuid",
            "device_name", "belongs_to__application", "is_of__device_type", "id",
            "last_connectivity_event", "is_connected_to_vpn"}
    ok(need <= set(d) and d["api_heartbeat_state"] == "unknown" and d["is_online"] is False and
       d["os_version"] == "balenaOS 6.0.13" and d["belongs_to__application"] == {"__id": app_id},
       "GET /v7/device(uuid=...) has the fields the SDK reads; heartbeat unknown", d)
    rep = {uuid: {"os_version": "balenaOS 6.1.0", "os_variant": "dev",
                  "supervisor_version": "17.0.0", "status": "Idle", "ip_address": "10.0.0.5",
                  "provisioning_progress": None}}
    st, _, _ = s.req("PATCH", "/device/v3/state", rep, dkey)
    st2, body, _ = s.get(q("/v7/device(uuid='%s')" % uuid,
                           _select="os_version,supervisor_version,status,ip_address,api_heartbeat_state,is_online,last_connectivity_event"),
                         USER_KEY)
    d = body["d"][0]
    ok(st == 200 and d["os_version"] == "balenaOS 6.1.0" and d["supervisor_version"] == "17.0.0"
       and d["ip_address"] == "10.0.0.5" and d["api_heartbeat_state"] == "online" and
       d["is_online"] is False and d["last_connectivity_event"],
       "PATCH /device/v3/state records versions and makes the device online (API heartbeat; "
       "is_online is the VPN's)", (st, d))
    other = new_uuid()
    st, _, _ = s.req("PATCH", "/device/v3/state", {other: {"status": "x"}}, dkey)
    ok(st == 401, "PATCH state for a uuid the key does not own -> 401", st)
    st, _, _ = s.req("PATCH", "/device/v3/state", rep)
    ok(st == 401, "PATCH state without credentials -> 401", st)
    st, body, r = s.get("/device/v3/%s/state" % uuid, dkey)
    etag = r.getheader("ETag")
    ok(st == 200 and uuid in body and "apps" in body[uuid] and etag,
       "GET /device/v3/:uuid/state returns the target state keyed by uuid", body)
    st, _, _ = s.get("/device/v3/%s/state" % uuid, dkey, headers={"If-None-Match": etag})
    ok(st == 304, "If-None-Match with the same ETag -> 304", st)
    st, _, _ = s.get("/device/v3/%s/state" % uuid)
    ok(st == 401, "target state without credentials -> 401", st)
    st, body, _ = s.get("/device/v2/%s/state" % uuid, dkey)
    ok(st == 200 and "local" in body, "GET /device/v2/:uuid/state (legacy)", body)
    st, _, _ = s.req("PATCH", "/v6/device(uuid='%s')" % uuid, {"device_name": "dut-1"}, USER_KEY)
    st2, body, _ = s.get("/v7/device(uuid='%s')?$select=device_name" % uuid, USER_KEY)
    ok(st == 200 and body["d"][0]["device_name"] == "dut-1",
       "PATCH /v6/device(uuid=...) renames the device", (st, body))
    st, _, _ = s.req("PATCH", "/v7/device(uuid='%s')" % uuid, {"uuid": "x"}, USER_KEY)
    ok(st == 400, "PATCH of a read-only field -> 400", st)


def hb(s, uuid):
    st, body, _ = s.get(q("/v7/device(uuid='%s')" % uuid,
                          _select="api_heartbeat_state,is_online,is_connected_to_vpn,"
                          "changed_api_heartbeat_state_on__date,overall_status,last_vpn_event"),
                        USER_KEY)
    return body["d"][0]


def states_after(s, uuid, advances):
    """The device's api_heartbeat_state after each move of the emulator's clock by the
    given milliseconds, in turn."""
    seen = []
    for adv in advances:
        s.req("POST", "/__rigor/clock", {"advance_ms": adv})
        seen.append(hb(s, uuid)["api_heartbeat_state"])
    return seen


def test_heartbeat(tmp):
    # Scaled real time: poll 600 s x 1.5 x 0.002 = 1.8 s to 'timeout', +600 s x 0.002 = 1.2 s
    # more to 'offline'. Samples are taken 2.0 s and 3.2 s after the heartbeat returned, so
    # up to ~1 s of scheduling delay is tolerated.
    s = Server(tmp, "--heartbeat-scale", "0.002", "--heartbeat-timeout", "600")
    uuid = new_uuid()
    st, reg, _ = s.req("POST", "/device/register", {"application": 1, "uuid": uuid,
                                                    "device_type": "raspberrypi4-64"}, PROV_KEY)
    s.get("/device/v3/%s/state" % uuid, reg["api_key"])
    t1 = time.time()
    a = hb(s, uuid)
    time.sleep(max(0, t1 + 2.0 - time.time()))
    b = hb(s, uuid)
    time.sleep(max(0, t1 + 3.2 - time.time()))
    c = hb(s, uuid)
    ok(a["api_heartbeat_state"] == "online" and b["api_heartbeat_state"] == "timeout" and
       c["api_heartbeat_state"] == "offline",
       "scaled clock: online -> timeout (poll x 1.5) -> offline (+heartbeat timeout)",
       (a, b, c))
    ok(not any(x["is_online"] or x["is_connected_to_vpn"] for x in (a, b, c)) and
       a["overall_status"] == "idle" and c["overall_status"] == "disconnected",
       "the heartbeat alone never sets is_online/is_connected_to_vpn (the VPN's); "
       "overall_status follows the heartbeat", (a, b, c))
    ok(a["changed_api_heartbeat_state_on__date"] < b["changed_api_heartbeat_state_on__date"]
       < c["changed_api_heartbeat_state_on__date"], "changed_api_heartbeat_state_on__date advances")
    s.get("/device/v3/%s/state" % uuid, USER_KEY)
    ok(hb(s, uuid)["api_heartbeat_state"] == "offline",
       "target-state fetch with a user key is not a heartbeat")
    s.req("PATCH", "/device/v3/state", {uuid: {"status": "Idle"}}, reg["api_key"])
    ok(hb(s, uuid)["api_heartbeat_state"] == "online", "a new state report brings it back online")
    s.stop()

    # Unscaled, driven by the control clock: boundaries at 900 s and 915 s.
    s = Server(tmp)
    uuid = new_uuid()
    st, reg, _ = s.req("POST", "/device/register", {"application": 1, "uuid": uuid,
                                                    "device_type": "raspberrypi4-64"}, PROV_KEY)
    s.get("/device/v3/%s/state" % uuid, reg["api_key"])
    seen = states_after(s, uuid, (898000, 4000, 14000))   # -> 898 s, 902 s, 916 s
    ok(seen == ["online", "timeout", "offline"],
       "control clock: 898 s online, 902 s timeout, 916 s offline (defaults 600 s x 1.5 + 15 s)",
       seen)
    # the real API's floor: a device's poll interval below the default is raised to it
    st, eff, _ = s.req("POST", "/__rigor/devices/%s/poll-interval" % uuid, {"seconds": 60})
    s.get("/device/v3/%s/state" % uuid, reg["api_key"])
    seen = states_after(s, uuid, (120000, 778000, 4000))
    ok(st == 200 and eff == {"seconds": 600} and seen == ["online", "online", "timeout"],
       "per-device poll interval 60 s is raised to the 600 s floor: online at 120 s and "
       "898 s, timeout at 902 s", (st, eff, seen))
    st, eff, _ = s.req("POST", "/__rigor/devices/%s/poll-interval" % uuid, {"seconds": 1200})
    s.get("/device/v3/%s/state" % uuid, reg["api_key"])
    seen = states_after(s, uuid, (1790000, 20000))
    ok(eff == {"seconds": 1200} and seen == ["online", "timeout"],
       "per-device poll interval 1200 s (above the floor): timeout after 1800 s", (eff, seen))
    st, _, _ = s.get("/device/v3/%s/state" % uuid, reg["api_key"])
    st, dev, _ = s.req("POST", "/__rigor/devices/%s/vpn" % uuid, {"connected": True})
    s.req("POST", "/__rigor/clock", {"advance_ms": 2000000})
    d = hb(s, uuid)
    ok(st == 200 and d["is_online"] is True and d["is_connected_to_vpn"] is True and
       d["api_heartbeat_state"] == "offline" and d["overall_status"] == "idle",
       "control: a VPN connection sets is_online independently of the heartbeat", d)
    s.req("POST", "/__rigor/devices/%s/vpn" % uuid, {"connected": False})
    d = hb(s, uuid)
    ok(d["is_online"] is False and d["last_vpn_event"] is not None and
       d["overall_status"] == "disconnected",
       "VPN disconnected: is_online false, last_vpn_event kept", d)
    s.stop()


def test_persistence(tmp):
    s = Server(tmp)
    uuid = new_uuid()
    st, reg, _ = s.req("POST", "/device/register", {"application": 1, "uuid": uuid,
                                                    "device_type": "raspberrypi4-64"}, PROV_KEY)
    s.req("PATCH", "/device/v3/state", {uuid: {"os_version": "balenaOS 6.0.13"}}, reg["api_key"])
    rc = s.stop(signal.SIGTERM)
    ok(rc == 0, "SIGTERM -> clean exit 0", rc)
    leftovers = [f for f in os.listdir(tmp) if ".tmp" in f]
    state = json.load(open(os.path.join(tmp, "state.json")))
    ok(not leftovers and any(d["uuid"] == uuid for d in state["device"]),
       "state file is valid JSON with the device; no temp files left", leftovers)
    s = Server(tmp)
    st, body, _ = s.get(q("/v7/device(uuid='%s')" % uuid,
                          _select="uuid,os_version,api_heartbeat_state"), reg["api_key"])
    ok(st == 200 and body["d"][0]["os_version"] == "balenaOS 6.0.13" and
       body["d"][0]["api_heartbeat_state"] == "online",
       "after restart: device, its key, reported state and heartbeat survive", body)
    st, _, _ = s.req("POST", "/device/register", {"application": 1, "uuid": uuid,
                                                  "device_type": "raspberrypi4-64"}, PROV_KEY)
    ok(st == 409, "after restart: the uuid is still taken (409)", st)
    rc = s.stop(signal.SIGINT)
    ok(rc == 0, "SIGINT -> clean exit 0", rc)


def test_seed(tmp):
    seed = {
        "users": [{"username": "alice", "email": "a@example.invalid", "api_keys": ["alicekey"]}],
        "device_types": [{"slug": "intel-nuc", "name": "Intel NUC", "arch": "amd64"}],
        "fleets": [{"slug": "alice/nuc", "device_type": "intel-nuc",
                    "provisioning_keys": ["nucprov"]}],
        "devices": [{"fleet": "alice/nuc", "uuid": "ab" * 16, "api_key": "nucdevkey"}],
    }
    p = os.path.join(tmp, "seed.json")
    json.dump(seed, open(p, "w"))
    s = Server(tmp, "--seed", p, state=os.path.join(tmp, "seeded.json"))
    st, who, _ = s.get("/user/v1/whoami", "alicekey")
    st2, body, _ = s.get(q("/v7/device", _select="uuid",
                           _expand="is_of__device_type($select=slug)"), "nucdevkey")
    ok(st == 200 and who["username"] == "alice" and st2 == 200 and
       body["d"][0]["is_of__device_type"][0]["slug"] == "intel-nuc",
       "--seed creates users, fleets, device types and devices", (who, body))
    st, _, _ = s.get("/user/v1/whoami", USER_KEY)
    ok(st == 401, "built-in defaults are not added when --seed is given", st)
    s.stop()


def test_faults(tmp):
    s = Server(tmp)
    st, f, _ = s.get("/__rigor/faults")
    ok(st == 200 and f["drop"] == 0 and f["status_count"] == 0, "GET /__rigor/faults", f)
    s.req("POST", "/__rigor/faults", {"latency_ms": 300, "latency_count": 1})
    t = time.time()
    st, _, _ = s.get("/ping")
    dt1 = time.time() - t
    t = time.time()
    s.get("/ping")
    dt2 = time.time() - t
    ok(st == 200 and dt1 >= 0.3 and dt2 < 0.25, "latency_ms delays the next request only",
       (dt1, dt2))
    s.req("POST", "/__rigor/faults", {"status": 503, "status_count": 2})
    codes = [s.get("/ping")[0] for _ in range(3)]
    ok(codes == [503, 503, 200], "status 503 for the next 2 requests", codes)
    s.req("POST", "/__rigor/faults", {"drop": 1})
    err = None
    try:
        s.get("/ping")
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        err = e
    ok(err is not None and s.get("/ping")[0] == 200,
       "drop closes the next connection without a response", repr(err))
    s.req("POST", "/__rigor/faults", {"malformed_json": 1})
    st, raw, _ = s.get("/user/v1/whoami", USER_KEY, raw=True)
    bad = False
    try:
        json.loads(raw)
    except ValueError:
        bad = True
    st2, good, _ = s.get("/user/v1/whoami", USER_KEY)
    ok(st == 200 and bad and isinstance(good, dict), "malformed_json corrupts the next body",
       raw)
    s.req("POST", "/__rigor/faults", {"status": 500, "status_count": 5, "path_prefix": "/v7/"})
    a = s.get("/ping")[0]
    b = s.get("/v7/device", USER_KEY)[0]
    s.req("DELETE", "/__rigor/faults")
    c = s.get("/v7/device", USER_KEY)[0]
    ok((a, b, c) == (200, 500, 200), "path_prefix limits faults; DELETE clears them", (a, b, c))
    st, _, _ = s.req("POST", "/__rigor/faults", {"bogus": 1})
    ok(st == 400, "unknown fault key -> 400", st)
    s.stop()


def test_hostos(tmp):
    import hashlib
    p10, p11 = os.path.join(tmp, "p10.gz"), os.path.join(tmp, "p11.gz")
    open(p10, "wb").write(b"\x1f\x8b" + os.urandom(1000))
    open(p11, "wb").write(b"\x1f\x8b" + os.urandom(200000))
    r = subprocess.run([BACKEND, "--state", os.path.join(tmp, "x.json"), "--hostos",
                        "qemux86-64:1.1:" + os.path.join(tmp, "missing")],
                       capture_output=True, text=True)
    ok(r.returncode == 2 and "cannot read" in r.stderr, "--hostos with an unreadable PATH: exit 2",
       (r.returncode, r.stderr))
    s = Server(tmp, "--hostos", "qemux86-64:1.0:" + p10, "--hostos", "qemux86-64:1.1:" + p11,
               "--hostos", "raspberrypi4-64:6.1.0:" + p10)
    st, body, _ = s.get(q("/v7/application", _select="id,app_name,is_host",
                          _expand="is_for__device_type($select=slug),owns__release($select=id,"
                                  "raw_version,semver,semver_major,semver_minor,is_final,status;"
                                  "$expand=release_tag($select=tag_key,value))",
                          _filter="is_host eq true and is_for__device_type/any(dt:dt/slug in "
                                  "('qemux86-64'))"), USER_KEY)
    rels = body["d"][0]["owns__release"] if st == 200 and len(body["d"]) == 1 else []
    ok(st == 200 and body["d"][0]["app_name"] == "qemux86-64" and
       [r["raw_version"] for r in rels] == ["1.0", "1.1"] and rels[1]["semver"] == "1.1.0" and
       rels[1]["semver_minor"] == 1 and all(r["is_final"] and r["status"] == "success"
                                            for r in rels) and
       rels[1]["release_tag"] == [{"tag_key": "version", "value": "1.1"}],
       "host application per device type with its releases (the SDK's os query)", body)
    r10, r11 = rels[0]["id"], rels[1]["id"]
    st, other, _ = s.get(q("/v7/release", _select="id",
                           _filter="belongs_to__application/any(a:a/is_for__device_type/any("
                                   "dt:dt/slug eq 'raspberrypi4-64'))"), USER_KEY)
    rpi = other["d"][0]["id"]
    uuid = new_uuid()
    st, reg, _ = s.req("POST", "/device/register", {"application": 1, "uuid": uuid,
                                                    "device_type": "qemux86-64"}, PROV_KEY)
    dkey = reg["api_key"]
    st, body, _ = s.get("/rigor/v1/device/%s/hostos" % uuid, dkey)
    ok(st == 200 and body == {"target": None}, "unpinned: hostos is {target: null}", body)
    st, _, _ = s.get("/rigor/v1/device/%s/hostos" % uuid)
    st2, _, _ = s.get("/rigor/v1/device/%s/hostos" % uuid, USER_KEY)
    ok(st == 401 and st2 == 401, "hostos endpoint needs the device's own key (401)", (st, st2))
    s.req("PATCH", "/device/v3/state", {uuid: {"os_version": "1.0", "os_variant": "prod"}}, dkey)
    st, body, _ = s.get(q("/v7/device(uuid='%s')" % uuid, _select="should_be_operated_by__release"),
                        USER_KEY)
    ok(body["d"][0]["should_be_operated_by__release"] == {"__id": r10},
       "the first os_version report pins the device to the matching release (as balena)", body)
    dev = "/v7/device(uuid='%s')" % uuid
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": r11}, dkey)
    ok(st == 401, "a device key cannot pin its own OS (401)", st)
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": "x"}, USER_KEY)
    ok(st == 400 and "Expected an ID" in str(body), "pin to a non-id -> 400", (st, body))
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": 999}, USER_KEY)
    ok(st == 400 and "Could not find a hostapp release" in str(body),
       "pin to an unknown release -> 400", (st, body))
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": rpi}, USER_KEY)
    ok(st == 400 and "is for a device type that describes the device" in str(body),
       "pin to a release of another device type -> 400 (the API's rule)", (st, body))
    st, body, _ = s.req("PATCH", q("/v7/device", _filter="id in (%d)" % reg["id"]),
                        {"should_be_operated_by__release": r11}, USER_KEY)
    ok(st == 200, "pin with $filter=id in (...) as balena-sdk pinToOsRelease sends it", (st, body))
    st, body, _ = s.get(q(dev, _select="os_version",
                          _expand="should_be_operated_by__release($select=raw_version)"), USER_KEY)
    ok(body["d"][0]["should_be_operated_by__release"] == [{"raw_version": "1.1"}],
       "$expand=should_be_operated_by__release shows the pinned release", body)
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": r10}, USER_KEY)
    ok(st == 400 and "downgrade" in str(body), "pin back to 1.0 -> 400 downgrade", (st, body))
    st, body, _ = s.get("/rigor/v1/device/%s/hostos" % uuid, dkey)
    sha = hashlib.sha256(open(p11, "rb").read()).hexdigest()
    ok(st == 200 and body == {"target": "1.1", "release": r11,
                              "url": "/rigor/v1/hostos/qemux86-64/1.1/rootfs.img.gz",
                              "sha256": sha, "size": os.path.getsize(p11)},
       "pinned: hostos gives target, url, sha256 and size of the payload", body)
    st, data, r = s.get(body["url"], dkey, raw=True)
    ok(st == 200 and data == open(p11, "rb").read() and
       r.getheader("Content-Length") == str(len(data)) and
       hashlib.sha256(data).hexdigest() == body["sha256"],
       "payload download with the device key: the file, with Content-Length", st)
    st, data, _ = s.get(body["url"], USER_KEY, raw=True)
    ok(st == 200 and len(data) == os.path.getsize(p11), "payload download with a user key", st)
    st1, _, _ = s.get(body["url"], raw=True)
    st2, _, _ = s.get("/rigor/v1/hostos/raspberrypi4-64/6.1.0/rootfs.img.gz", dkey, raw=True)
    st3, _, _ = s.get("/rigor/v1/hostos/qemux86-64/9.9/rootfs.img.gz", dkey, raw=True)
    ok((st1, st2, st3) == (200, 403, 404),
       "payload: public without a key (as image downloads), a device of another type 403, "
       "unknown version 404", (st1, st2, st3))
    s.req("PATCH", "/device/v3/state", {uuid: {"os_version": "1.1", "os_variant": "prod"}}, dkey)
    st, body, _ = s.get(q("/v6/device(uuid='%s')" % uuid, _select="os_version"), USER_KEY)
    ok(body["d"][0]["os_version"] == "1.1", "a report after the update changes os_version", body)
    st, body, _ = s.req("PATCH", dev, {"should_be_operated_by__release": None}, USER_KEY)
    st2, body2, _ = s.get("/rigor/v1/device/%s/hostos" % uuid, dkey)
    ok(st == 200 and body2 == {"target": None}, "unpin (null) -> hostos {target: null}", body2)
    st, body, _ = s.req("POST", "/__rigor/hostos", {"device_type": "qemux86-64", "version": "1.2",
                                                    "path": p10})
    st2, lst, _ = s.get("/__rigor/hostos")
    ok(st == 200 and body["raw_version"] == "1.2" and
       [(x["device_type"], x["version"]) for x in lst] ==
       [("qemux86-64", "1.0"), ("qemux86-64", "1.1"), ("qemux86-64", "1.2"),
        ("raspberrypi4-64", "6.1.0")], "POST /__rigor/hostos adds a release and payload", lst)
    st, body, _ = s.req("POST", "/__rigor/hostos", {"device_type": "nope", "version": "1"})
    ok(st == 400, "POST /__rigor/hostos with an unknown device type -> 400", (st, body))
    s.stop()


def main():
    # Make SIGTERM/SIGHUP unwind through the finally below, so no server is left behind.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="rigor-backend-test.")
    try:
        s = test_basic(tmp)
        app_id = test_odata(s)
        uuid, reg = test_config_register(s, app_id)
        test_device(s, app_id, uuid, reg)
        s.stop()
        for fn in (test_heartbeat, test_persistence, test_seed, test_faults, test_hostos):
            sub = os.path.join(tmp, fn.__name__)
            os.mkdir(sub)
            fn(sub)
    except Exception:
        ok(False, "test aborted", traceback.format_exc())
    finally:
        for srv in list(SERVERS):
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % N)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
