// SPDX-License-Identifier: MIT
// Cross-check rigor-backend with the official balena-sdk. Prints TAP.
// usage: node check.js <node_modules dir> <api url> <user api key> <fleet slug> <device type>
//                       <sdk package name>...
// Each named package (e.g. balena-sdk, or an npm alias of another version) runs the same checks.
'use strict';

const path = require('path');
const [nodeModules, apiUrl, userKey, fleetSlug, deviceType, ...sdkNames] = process.argv.slice(2);

let n = 0;
let failed = 0;
let prefix = '';
const ok = (cond, name, diag) => {
	n++;
	if (!cond) failed++;
	console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${prefix}${name}`);
	if (!cond && diag !== undefined) {
		for (const l of String(typeof diag === 'string' ? diag : JSON.stringify(diag)).split('\n')) {
			console.log(`# ${l}`);
		}
	}
};
const step = async (name, fn) => {
	try {
		return await fn();
	} catch (err) {
		ok(false, `${name} threw`, err && err.stack ? err.stack : err);
		return undefined;
	}
};

async function check(sdkName) {
	const { getSdk } = require(path.join(nodeModules, sdkName));
	const sdkVersion = require(path.join(nodeModules, sdkName, 'package.json')).version;
	prefix = `sdk ${sdkVersion}: `;
	console.log(`# balena-sdk ${sdkVersion} (${sdkName}) against ${apiUrl}`);
	const balena = getSdk({ apiUrl, dataDirectory: false, isBrowser: false });

	await step('login with API key', async () => {
		await balena.auth.loginWithToken(userKey);
		ok(await balena.auth.isLoggedIn(), 'auth.loginWithToken + isLoggedIn');
	});
	await step('whoami', async () => {
		const who = await balena.auth.whoami();
		ok(who && who.actorType === 'user' && who.username === 'rigor', 'auth.whoami is user rigor', who);
		const info = await balena.auth.getUserInfo();
		ok(info && typeof info.id === 'number' && info.username === 'rigor', 'auth.getUserInfo', info);
	});
	const app = await step('application.get', async () => {
		const a = await balena.models.application.get(fleetSlug, {
			$select: ['id', 'slug', 'app_name'],
			$expand: { is_for__device_type: { $select: 'slug' } },
		});
		ok(a.slug === fleetSlug && a.is_for__device_type[0].slug === deviceType,
			`application.get('${fleetSlug}') with $expand`, a);
		const byId = await balena.models.application.get(a.id, { $select: 'slug' });
		ok(byId.slug === fleetSlug, 'application.get(id)', byId);
		return a;
	});
	await step('application.get missing', async () => {
		let err;
		try {
			await balena.models.application.get('rigor/does-not-exist');
		} catch (e) {
			err = e;
		}
		ok(err && err.code === 'BalenaApplicationNotFound', 'application.get of a missing fleet rejects with BalenaApplicationNotFound', err && err.code);
	});
	await step('os.getConfig', async () => {
		const cfg = await balena.models.os.getConfig(fleetSlug, { version: '6.0.13', developmentMode: true });
		ok(cfg.applicationId === app.id && cfg.deviceType === deviceType && cfg.apiEndpoint === apiUrl &&
			typeof cfg.apiKey === 'string' && cfg.apiKey.length >= 16 && cfg.listenPort === 48484 &&
			cfg.developmentMode === true && typeof cfg.vpnEndpoint === 'string' &&
			typeof cfg.registryEndpoint === 'string' && typeof cfg.deltaEndpoint === 'string',
		'os.getConfig (download-config) returns a config.json with a provisioning key', cfg);
	});
	const uuid = balena.models.device.generateUniqueKey();
	ok(/^[0-9a-f]{32}$/.test(uuid), 'device.generateUniqueKey gives 32 hex chars', uuid);
	const reg = await step('device.register', async () => {
		const r = await balena.models.device.register(fleetSlug, uuid);
		ok(r && typeof r.id === 'number' && r.uuid === uuid && typeof r.api_key === 'string',
			'device.register returns id/uuid/api_key', r);
		return r;
	});
	await step('device.register duplicate', async () => {
		let err;
		try {
			await balena.models.device.register(fleetSlug, uuid, deviceType);
		} catch (e) {
			err = e;
		}
		const status = err && (err.statusCode || (err.response && (err.response.statusCode || err.response.status)));
		ok(err && status === 409, 'device.register of the same uuid fails with 409', err && (err.stack || err));
	});
	await step('device.get', async () => {
		const d = await balena.models.device.get(uuid);
		ok(d.uuid === uuid && d.id === reg.id && typeof d.device_name === 'string' &&
			d.belongs_to__application && d.belongs_to__application.__id === app.id &&
			d.is_of__device_type && typeof d.is_of__device_type.__id === 'number' &&
			d.api_heartbeat_state === 'unknown' && d.is_online === false,
		'device.get(uuid) before first heartbeat', d);
		const byId = await balena.models.device.get(reg.id, { $select: ['uuid'] });
		ok(byId.uuid === uuid, 'device.get(id)', byId);
		let short;
		try {
			short = await balena.models.device.get(uuid.slice(0, 7), { $select: ['uuid'] });
		} catch (e) {
			// balena-sdk >= 23 refuses partial uuids before sending anything.
			if (e.code !== 'BalenaInvalidParameterError') throw e;
		}
		ok(short === undefined || short.uuid === uuid, 'device.get(short uuid) via startswith filter (if the SDK allows it)', short);
		ok(await balena.models.device.isOnline(uuid) === false, 'device.isOnline false before heartbeat');
	});
	await step('device heartbeat', async () => {
		// The device reports its state with its own key, as the supervisor does.
		const body = {
			[uuid]: { os_version: 'balenaOS 6.0.13', os_variant: 'dev', supervisor_version: '16.7.5', status: 'Idle' },
		};
		const res = await fetch(`${apiUrl}/device/v3/state`, {
			method: 'PATCH',
			headers: { Authorization: `Bearer ${reg.api_key}`, 'Content-Type': 'application/json' },
			body: JSON.stringify(body),
		});
		ok(res.status === 200, 'PATCH /device/v3/state with the device key', res.status);
		// isOnline is the VPN connection (is_online in SDK 20, is_connected_to_vpn in 23), which
		// the API keeps apart from its heartbeat, as the real API does
		ok(await balena.models.device.isOnline(uuid) === false, 'device.isOnline still false after an API heartbeat alone (no VPN)');
		const vpn = await fetch(`${apiUrl}/__rigor/devices/${uuid}/vpn`, {
			method: 'POST', headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify({ connected: true }),
		});
		ok(vpn.status === 200 && await balena.models.device.isOnline(uuid) === true,
			'device.isOnline true once the VPN connects', vpn.status);
		const d = await balena.models.device.get(uuid, {
			$select: ['os_version', 'supervisor_version', 'api_heartbeat_state', 'is_online'],
			$expand: { belongs_to__application: { $select: 'slug' }, is_of__device_type: { $select: 'slug' } },
		});
		ok(d.os_version === 'balenaOS 6.0.13' && d.supervisor_version === '16.7.5' &&
			d.api_heartbeat_state === 'online' && d.is_online === true &&
			d.belongs_to__application[0].slug === fleetSlug && d.is_of__device_type[0].slug === deviceType,
		'device.get shows reported versions, online state and expanded fleet/type', d);
	});
	await step('host OS releases', async () => {
		// The emulator runs with --hostos for 6.0.13 and 6.1.0 of this device type and 6.1.0 of
		// raspberrypi3 (sdk-check.sh).
		const versions = await balena.models.os.getAvailableOsVersions(deviceType);
		const raw = versions.map((v) => v.raw_version);
		ok(raw.length === 2 && raw[0] === '6.1.0' && raw[1] === '6.0.13' &&
			versions.every((v) => typeof v.id === 'number' && v.strippedVersion === v.raw_version),
		`os.getAvailableOsVersions('${deviceType}') lists the host OS releases, newest first`, versions);
		const all = await balena.models.os.getAllOsVersions(deviceType);
		ok(all.length === 2, 'os.getAllOsVersions agrees', all);
		const target = versions[0];
		const before = await balena.models.device.get(uuid, {
			$select: 'id', $expand: { should_be_operated_by__release: { $select: 'raw_version' } },
		});
		ok(before.should_be_operated_by__release.length === 1 &&
			before.should_be_operated_by__release[0].raw_version === '6.0.13',
		'the first os_version report set should_be_operated_by__release to the running release', before);
		if (typeof balena.models.device.pinToOsRelease === 'function') {
			await balena.models.device.pinToOsRelease(uuid, target.raw_version);
		} else {
			// balena-sdk 20 has only startOsUpdate (the actions service); pin as 23 does.
			await balena.pine.patch({
				resource: 'device', options: { $filter: { id: { $in: [reg.id] } } },
				body: { should_be_operated_by__release: target.id },
			});
		}
		const d = await balena.models.device.get(uuid, {
			$select: ['os_version', 'should_be_operated_by__release'],
			$expand: { should_be_operated_by__release: { $select: ['id', 'raw_version', 'is_final'] } },
		});
		ok(d.should_be_operated_by__release.length === 1 &&
			d.should_be_operated_by__release[0].id === target.id &&
			d.should_be_operated_by__release[0].raw_version === '6.1.0',
		`device pinned to OS ${target.raw_version} (${typeof balena.models.device.pinToOsRelease === 'function' ? 'device.pinToOsRelease' : 'pine.patch'}) and read back with $expand`, d);
		let err;
		try {
			await balena.pine.patch({
				resource: 'device', id: reg.id, body: { should_be_operated_by__release: versions[1].id },
			});
		} catch (e) {
			err = e;
		}
		ok(err && err.statusCode === 400 && /downgrade/.test(err.message),
			'pinning back to an older OS release is refused (400, as the API\'s downgrade check)', err && (err.stack || err));
		const other = await balena.models.os.getAvailableOsVersions('raspberrypi3');
		err = undefined;
		try {
			await balena.pine.patch({
				resource: 'device', id: reg.id, body: { should_be_operated_by__release: other[0].id },
			});
		} catch (e) {
			err = e;
		}
		ok(other.length === 1 && err && err.statusCode === 400,
			'pinning to a release of another device type is refused with 400', err && (err.stack || err));
		if (typeof balena.models.device.pinToOsRelease === 'function') {
			err = undefined;
			try {
				await balena.models.device.pinToOsRelease(uuid, '9.9.9');
			} catch (e) {
				err = e;
			}
			ok(err && err.code === 'BalenaReleaseNotFound', 'device.pinToOsRelease to an unknown version rejects with BalenaReleaseNotFound', err && (err.stack || err));
		}
	});
	await step('device.getAllByApplication', async () => {
		const all = await balena.models.device.getAllByApplication(fleetSlug, { $select: ['uuid'] });
		ok(all.some((d) => d.uuid === uuid), 'device.getAllByApplication lists the new device', all);
	});
	await step('fault injection', async () => {
		const fault = (body) => fetch(`${apiUrl}/__rigor/faults`, {
			method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
		});
		await fault({ status: 503, status_count: 1, path_prefix: '/v7/' });
		let err;
		try {
			await balena.models.device.get(uuid, { $select: 'uuid' });
		} catch (e) {
			err = e;
		}
		ok(err && err.statusCode === 503, 'an injected 503 reaches the SDK caller as statusCode 503', err && (err.stack || err));
		const d = await balena.models.device.get(uuid, { $select: 'uuid' });
		ok(d.uuid === uuid, 'the next request succeeds again', d);
		await fault({ malformed_json: 1, path_prefix: '/v7/' });
		err = undefined;
		try {
			await balena.models.device.get(uuid, { $select: 'uuid' });
		} catch (e) {
			err = e;
		}
		ok(err !== undefined, 'an injected malformed body makes the SDK call reject', err);
		await fetch(`${apiUrl}/__rigor/faults`, { method: 'DELETE' });
	});
	await step('application.create/remove', async () => {
		const name = `Rig${Date.now() % 100000}x${n}`;
		const created = await balena.models.application.create({ name, deviceType, organization: 'rigor' });
		ok(created && created.slug === `rigor/${name.toLowerCase()}` && typeof created.id === 'number',
			'application.create in organization rigor', created);
		const got = await balena.models.application.get(`rigor/${name.toLowerCase()}`, { $select: ['id'] });
		ok(got.id === created.id, 'the new fleet can be read back', got);
		await balena.models.application.remove(created.id);
		let err;
		try {
			await balena.models.application.get(created.id);
		} catch (e) {
			err = e;
		}
		ok(err && err.code === 'BalenaApplicationNotFound', 'application.remove deletes it', err && err.code);
	});
	await step('bad key', async () => {
		const other = getSdk({ apiUrl, dataDirectory: false, isBrowser: false });
		await other.auth.loginWithToken('not-a-valid-key');
		ok(await other.auth.isLoggedIn() === false, 'isLoggedIn false with an unknown key (401)');
	});
}

async function main() {
	for (const name of sdkNames) {
		await check(name);
	}
	console.log(`1..${n}`);
	process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
	ok(false, 'unexpected error', err && err.stack ? err.stack : err);
	console.log(`1..${n}`);
	process.exitCode = 1;
});
