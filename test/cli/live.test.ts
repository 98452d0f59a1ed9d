import { describe, expect, it } from 'vitest';
import { liveConnectUrl } from '../../infra/cli/live.js';

describe('dualpath live: the connect URL', () => {
  it('puts the subscription (never the key) in the query string of the stage URL', () => {
    const url = liveConnectUrl('wss://abc.execute-api.eu-west-1.amazonaws.com/v1', {
      device: 'pump 7',
      kinds: 'reading,alert',
    });
    expect(url).toBe('wss://abc.execute-api.eu-west-1.amazonaws.com/v1?kinds=reading%2Calert&device=pump+7');
  });

  it('refuses a non-WebSocket URL and an unknown kind, naming the option', () => {
    expect(() => liveConnectUrl('https://abc/v1', {})).toThrow(/--url must be a wss:\/\/ URL/);
    expect(() => liveConnectUrl('not a url', {})).toThrow(/--url "not a url" is not a URL/);
    expect(() => liveConnectUrl('wss://abc/v1', { kinds: 'reading,gossip' })).toThrow(
      /--kinds: "gossip" is not one of reading, lifecycle, alert, operation/,
    );
  });
});
