import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { thingNames } from '../../functions/provisioner/handler.js';
import { thingName, typeAt } from '../../simulator/fleet.js';
import { optionsFromEnv, parseProfile } from '../../simulator/profile.js';

describe('profiles and environment', () => {
  it('parses the bundled profiles and rejects unknown keys loudly', () => {
    for (const f of ['local-demo.yaml', 'seeds-burst.yaml', 'load-10k.yaml']) {
      const p = parseProfile(readFileSync(`simulator/profiles/${f}`, 'utf8'), f);
      expect(p.devices).toBeGreaterThan(0);
    }
    expect(() => parseProfile('devices: 3\nrat: 2\n', 'x.yaml')).toThrow(/unknown key "rat"/);
    expect(() => parseProfile('[1, 2]', 'x.json')).toThrow(/map of options/);
  });

  it('reads the Fargate environment; SIM_THING_PREFIX selects provisioner naming', () => {
    const o = optionsFromEnv({
      SIM_DEVICES: '250',
      SIM_RATE: '2',
      SIM_THING_PREFIX: 'dualpath-sim-',
      IOT_ENDPOINT: 'abc-ats.iot.eu-west-1.amazonaws.com',
    });
    expect(o).toMatchObject({
      devices: 250,
      rate: 2,
      prefix: 'dualpath-sim-',
      naming: 'indexed',
      url: 'mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883',
    });
    expect(() => optionsFromEnv({ SIM_DEVICES: 'many' })).toThrow(/SIM_DEVICES/);
  });

  it('indexed thing names are exactly the names the provisioner creates', () => {
    const o = { url: 'mqtts://x:8883', devices: 12_345, prefix: 'dualpath-sim-', naming: 'indexed' as const };
    const names = thingNames('dualpath-sim-', 12_345);
    for (const i of [0, 9, 999, 12_344]) expect(thingName(o, i, 'breaker')).toBe(names[i]);
    expect(thingName({ url: 'mqtt://x', devices: 3 }, 2, 'breaker')).toBe('sim-breaker-00002');
  });

  it('type weights are honoured and deterministic', () => {
    const o = { url: 'mqtt://x', devices: 4000, types: { breaker: 3, 'env-sensor': 1 }, seed: 5 };
    const types = Array.from({ length: 4000 }, (_, i) => typeAt(o, i));
    expect(types).toEqual(Array.from({ length: 4000 }, (_, i) => typeAt(o, i)));
    const breakers = types.filter((t) => t === 'breaker').length;
    expect(breakers / 4000).toBeGreaterThan(0.7);
    expect(breakers / 4000).toBeLessThan(0.8);
    expect(() => typeAt({ url: 'mqtt://x', devices: 1, types: ['toaster'] }, 0)).toThrow(
      /unknown device type/,
    );
  });
});
