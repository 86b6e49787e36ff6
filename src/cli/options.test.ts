import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advertised, parseBool, parseDurationMs, parseForceNewCluster, parseHostPort, parsePeerAddresses } from './options.js';

describe('cli options', () => {
  it('parses --force-new-cluster: a boolean, or a member id that applies to that member only', () => {
    assert.equal(parseForceNewCluster(undefined, 'a'), false);
    assert.equal(parseForceNewCluster(true, 'a'), true);
    assert.equal(parseForceNewCluster('false', 'a'), false);
    assert.equal(parseForceNewCluster('conure-0', 'conure-0'), true);
    assert.equal(parseForceNewCluster('conure-0', 'conure-1'), false);
    assert.throws(() => parseForceNewCluster('not an id!', 'a'), /neither true\/false nor a member id/);
  });

  it('parses durations', () => {
    assert.equal(parseDurationMs('2s'), 2000);
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('1.5m'), 90_000);
    assert.equal(parseDurationMs('250'), 250);
    assert.throws(() => parseDurationMs('soon'), { code: 'invalid_argument' });
  });
  it('parses booleans', () => {
    assert.equal(parseBool(undefined), true);
    assert.equal(parseBool('false'), false);
    assert.equal(parseBool('TRUE'), true);
    assert.throws(() => parseBool('maybe'), /invalid boolean/);
  });
  it('parses host:port', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:8081', 'x'), { host: '127.0.0.1', port: 8081 });
    assert.deepEqual(parseHostPort(':7001', 'x'), { host: '0.0.0.0', port: 7001 });
    assert.deepEqual(parseHostPort('[::1]:80', 'x'), { host: '::1', port: 80 });
    assert.throws(() => parseHostPort('nohost', '--http-addr'), /--http-addr/);
    assert.throws(() => parseHostPort('h:70000', 'x'), /not host:port/);
  });
  it('advertises a concrete host for wildcard listeners', () => {
    assert.equal(advertised({ host: '127.0.0.1', port: 1 }, undefined, 'x'), '127.0.0.1:1');
    assert.equal(advertised({ host: '0.0.0.0', port: 1 }, 'pod-0.svc:7001', 'x'), 'pod-0.svc:7001');
    assert.notEqual(advertised({ host: '0.0.0.0', port: 1 }, undefined, 'x'), '0.0.0.0:1');
  });
  it('parses per-peer raft address overrides', () => {
    assert.deepEqual([...parsePeerAddresses('n2=127.0.0.1:9002, n3=[::1]:9003')], [['n2', '127.0.0.1:9002'], ['n3', '[::1]:9003']]);
    assert.equal(parsePeerAddresses(undefined).size, 0);
    assert.equal(parsePeerAddresses('n2=h:1,n2=h:2').get('n2'), 'h:2');
    assert.throws(() => parsePeerAddresses('127.0.0.1:9002'), /not id=host:port/);
    assert.throws(() => parsePeerAddresses('=h:1'), /not id=host:port/);
    assert.throws(() => parsePeerAddresses('n2=nohost'), /--peer-address n2/);
    assert.throws(() => parsePeerAddresses('n2=:9002'), /give a host to dial/);
  });
});
