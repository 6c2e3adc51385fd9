import { describe, expect, it } from 'vitest';
import { addressClass, refusedAddress } from '../../../src/config/addresses.ts';

const cls = (url: string) => addressClass(new URL(url));

describe('backend address classes', () => {
  it('knows cloud metadata services by address and by name', () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://[fd00:ec2::254]/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://METADATA.google.internal./',
      'http://[::ffff:169.254.169.254]/',
    ])
      expect(cls(url), url).toBe('metadata');
  });

  it('reads the numeric forms URL parsing accepts for an IPv4 address', () => {
    // WHATWG URL parsing turns these into 169.254.169.254 / 127.0.0.1 before we see them.
    expect(cls('http://0xa9.0xfe.0xa9.0xfe/')).toBe('metadata');
    expect(cls('http://2852039166/')).toBe('metadata');
    expect(cls('http://0177.0.0.1/')).toBe('loopback');
    expect(cls('http://[::ffff:7f00:1]/')).toBe('loopback');
  });

  it('sorts the rest into link-local, loopback, private, not-unicast and public', () => {
    expect(cls('http://169.254.1.1/')).toBe('link-local');
    expect(cls('http://[fe80::1]/')).toBe('link-local');
    for (const url of [
      'http://127.0.0.1:8080/',
      'http://0.0.0.0/',
      'http://localhost/',
      'http://a.localhost/',
      'http://[::1]/',
      'http://[::]/',
    ])
      expect(cls(url), url).toBe('loopback');
    for (const url of [
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://172.31.255.255/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://[fd12:3456::1]/',
    ])
      expect(cls(url), url).toBe('private');
    expect(cls('http://224.0.0.1/')).toBe('not-unicast');
    expect(cls('http://[ff02::1]/')).toBe('not-unicast');
    for (const url of [
      'https://api.example.com/',
      'http://172.32.0.1/',
      'http://8.8.8.8/',
      'http://[2001:db8::1]/',
      'http://100.128.0.1/',
    ])
      expect(cls(url), url).toBe('public');
  });
});

describe('which backends a config may name', () => {
  const none = { allowPrivate: false, allowLoopback: false };
  const all = { allowPrivate: true, allowLoopback: true };

  it('never metadata or link-local, whatever the config allows', () => {
    expect(refusedAddress(new URL('http://169.254.169.254/'), all)).toMatch(/cloud metadata service: never a backend/);
    expect(refusedAddress(new URL('http://169.254.10.10/'), all)).toMatch(/link-local address: never a backend/);
    expect(refusedAddress(new URL('http://239.1.1.1/'), all)).toMatch(/not a unicast address/);
  });

  it('private and loopback only when opted in, each by its own setting', () => {
    expect(refusedAddress(new URL('http://10.0.0.1/'), none)).toMatch(/network.allowPrivateBackends: true/);
    expect(refusedAddress(new URL('http://127.0.0.1/'), none)).toMatch(/network.allowLoopbackBackends: true/);
    expect(refusedAddress(new URL('http://10.0.0.1/'), { allowPrivate: true, allowLoopback: false })).toBeUndefined();
    expect(refusedAddress(new URL('http://127.0.0.1/'), { allowPrivate: true, allowLoopback: false })).toBeDefined();
    expect(refusedAddress(new URL('http://127.0.0.1/'), { allowPrivate: false, allowLoopback: true })).toBeUndefined();
    expect(refusedAddress(new URL('https://api.example.com/'), none)).toBeUndefined();
  });
});
