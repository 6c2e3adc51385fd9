import { describe, expect, it } from 'vitest';
import { defaultEndpointName, endpointKey, parseEndpointKey } from '../../../src/core/endpoint.ts';

describe('endpoint keys', () => {
  it('name service, version and endpoint, and split back into them', () => {
    const cases = [
      { service: 'svc', version: 'v1', endpoint: 'SVC_V1' },
      { service: 'svc', version: undefined, endpoint: '10.0.0.5:8080' },
      { service: 'a-b', version: 'v1.2-rc_1', endpoint: 'pod-7f9c~x' },
    ];
    for (const ref of cases) expect(parseEndpointKey(endpointKey(ref))).toEqual(ref);
    expect(endpointKey(cases[0]!)).toBe('svc@v1/SVC_V1');
    expect(endpointKey(cases[1]!)).toBe('svc/10.0.0.5:8080');
  });

  it('refuse what is not a key', () => {
    for (const bad of ['svc', '/x', 'svc@/x', '@v1/x', 'svc@v1/', 'svc@v1/a/b', 'svc/x y']) {
      expect(parseEndpointKey(bad), bad).toBeUndefined();
    }
  });

  it('default to the binding name, or the URL host with a non-default port', () => {
    expect(defaultEndpointName({ binding: 'SERVICE_B' })).toBe('SERVICE_B');
    expect(defaultEndpointName({ url: 'https://api.example.com/base' })).toBe('api.example.com');
    expect(defaultEndpointName({ url: 'http://10.0.0.5:8080/' })).toBe('10.0.0.5:8080');
  });
});
