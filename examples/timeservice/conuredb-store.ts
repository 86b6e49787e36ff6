/**
 * DB_TYPE=conuredb: the Time Service's locations on ConureDB's etcd v3 API instead of SQLite.
 *
 *   /timeservice/locations/<name>  →  {"name","timezone","description","createdAt"}
 *
 * Create is a txn guarded by "key absent" (duplicate → DuplicateLocationError); reads are
 * linearizable. The same timeservice_db_* metrics are kept (one gRPC client = one connection).
 * Env: ETCD_ENDPOINTS (host:port,…; default 127.0.0.1:2379), ETCD_PREFIX (/timeservice/).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { compare, EtcdClient, op, Txn } from '../../src/client/etcd-client.js';
import { DuplicateLocationError, type Location, type LocationStore } from './db.js';

export interface ConureStoreConfig { endpoints: string[]; prefix: string }

export function conureStoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ConureStoreConfig {
  const prefix = env.ETCD_PREFIX || '/timeservice/';
  if (!prefix.startsWith('/') || !prefix.endsWith('/') || prefix.length > 128) throw new Error('ETCD_PREFIX must start and end with / (at most 128 bytes)');
  const endpoints = (env.ETCD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new Error('ETCD_ENDPOINTS is empty');
  return { endpoints, prefix };
}

export class ConureLocationStore implements LocationStore {
  private readonly client: EtcdClient;
  private readonly base: string;
  private closed = false;
  private readonly duration: Histogram<'operation'>;
  private readonly queries: Counter<'operation'>;
  private readonly errors: Counter<'operation'>;

  constructor(config: ConureStoreConfig, registry: Registry) {
    this.client = new EtcdClient({ endpoints: config.endpoints });
    this.base = `${config.prefix}locations/`;
    this.duration = new Histogram({ name: 'timeservice_db_query_duration_seconds', help: 'Store query duration', labelNames: ['operation'], buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers: [registry] });
    this.queries = new Counter({ name: 'timeservice_db_queries_total', help: 'Store queries run', labelNames: ['operation'], registers: [registry] });
    this.errors = new Counter({ name: 'timeservice_db_errors_total', help: 'Store queries that failed', labelNames: ['operation'], registers: [registry] });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this;
    new Gauge({ name: 'timeservice_db_connections_open', help: 'Open store connections', registers: [registry], collect() { this.set(store.closed ? 0 : 1); } });
    new Gauge({ name: 'timeservice_db_connections_idle', help: 'Idle store connections', registers: [registry], collect() { this.set(0); } });
  }

  private async timed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.duration.startTimer({ operation });
    this.queries.inc({ operation });
    try { return await fn(); } catch (err) { if (!(err instanceof DuplicateLocationError)) this.errors.inc({ operation }); throw err; } finally { end(); }
  }

  async createLocation(l: Omit<Location, 'createdAt'>): Promise<Location> {
    const loc: Location = { ...l, createdAt: new Date().toISOString() };
    const key = this.base + loc.name;
    return this.timed('insert_location', async () => {
      const r = await new Txn((req) => this.client.runTxn(req)).if(compare.absent(key)).then(op.putJson(key, loc)).commit();
      if (!r.succeeded) throw new DuplicateLocationError(loc.name);
      return loc;
    });
  }

  async deleteLocation(name: string): Promise<boolean> {
    return this.timed('delete_location', async () => (await this.client.delete(this.base + name)).deleted > 0);
  }

  async getLocation(name: string): Promise<Location | undefined> {
    return this.timed('get_location', async () => {
      const kv = await this.client.get(this.base + name);
      return kv ? (JSON.parse(kv.value.toString()) as Location) : undefined;
    });
  }

  async listLocations(limit = 1000): Promise<Location[]> {
    return this.timed('list_locations', async () => (await this.client.range(this.base, { prefix: true, limit })).kvs.map((kv) => JSON.parse(kv.value.toString()) as Location));
  }

  async close(): Promise<void> { if (this.closed) return; this.closed = true; this.client.close(); }
}
