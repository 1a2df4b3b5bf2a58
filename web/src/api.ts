// The console's HTTP API, typed. Every call throws ApiError with the
// server's message ({"error","code"}) on a non-2xx reply.

export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly code: string) {
    super(message);
  }
}

// The session's CSRF token (from the login reply or GET /api/v1/session),
// sent on every state-changing call; none on a console without login.
let csrf = '';
export function setCsrf(token: string): void {
  csrf = token;
}

// Called when the server says the session is gone (logged out elsewhere,
// expired): the shell shows the login form again.
let unauthorized: (() => void) | null = null;
export function onUnauthorized(fn: () => void): void {
  unauthorized = fn;
}

export interface Session { login_required: boolean; user?: string; csrf_token?: string; expires?: number }

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const method = (init.method ?? 'GET').toUpperCase();
  if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  let body = init.body;
  if (init.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers, body });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('Cannot reach the Strom console: is the server running?', 0, 'network');
  }
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: keep the text for the error.
  }
  if (res.status === 401 && data?.code === 'unauthenticated' && unauthorized) unauthorized();
  if (!res.ok && res.status !== 207) {
    const msg = data?.error ?? data?.message ?? (text.trim() || res.statusText);
    throw new ApiError(msg, res.status, data?.code ?? 'http_' + res.status);
  }
  return data as T;
}

export interface Broker { id: number; host: string; port: number; rack: string | null }
export interface Cluster {
  cluster_id: string; controller: number; brokers: Broker[];
  topics: number; partitions: number; records: number; records_per_sec: number | null;
  groups_supported: boolean;
}
export interface QuorumReplica {
  id: number; log_end_offset: number; lag: number; last_fetch_ms: number | null; last_caught_up_ms: number | null;
}
export interface Quorum {
  available: boolean; message?: string; error?: string;
  leader: number; epoch: number; high_watermark: number; voters: QuorumReplica[] | null; observers: QuorumReplica[] | null;
}
export interface PartitionState {
  topic: string; internal: boolean; partition: number; leader: number; leader_epoch: number;
  replicas: number[]; isr: number[]; offline_replicas: number[]; error?: string;
}
export interface ClusterStatus {
  cluster_id: string; controller: number; brokers: (Broker & { controller: boolean })[]; missing_brokers: number[];
  quorum: Quorum; topics: number; partitions: number; under_replicated: PartitionState[]; offline: PartitionState[];
}
export interface Topic {
  name: string; internal: boolean; partitions: number; replication_factor: number;
  records: number; size_bytes: number | null; records_per_sec: number | null;
}
export interface PartitionInfo {
  partition: number; leader: number; leader_epoch: number; replicas: number[]; isr: number[];
  offline_replicas: number[]; under_replicated: boolean;
  start_offset: number; end_offset: number; records: number; size_bytes: number | null; error?: string;
}
export interface TopicDetail extends Topic {
  id: string; partition_details: PartitionInfo[]; under_replicated: number; offline: number;
  // What the user may do with the topic, as the broker says (absent when it does not).
  authorized_operations?: string[];
}
export interface Header { key: string; value?: string | null; value_base64?: string }
export type Encoding = 'json' | 'text' | 'base64';
export interface KRecord {
  topic: string; partition: number; offset: number; timestamp: number;
  key: unknown; key_encoding?: Encoding; value: unknown; value_encoding?: Encoding;
  headers: Header[]; size: number;
}
export interface Page {
  topic: string; order: 'newest' | 'oldest'; records: KRecord[];
  partitions: { partition: number; start_offset: number; end_offset: number; next_offset: number | null }[];
  next_offset: number | null; scanned: number; partial: boolean;
}
export interface Config { name: string; value: string | null; source: string; sensitive: boolean; default: boolean }
export interface GroupSummary {
  group: string; state: string; protocol_type: string; protocol: string; coordinator: number;
  members: number; topics: string[]; lag: number | null; error?: string;
}
export interface PartitionLag {
  topic: string; partition: number; committed: number; start_offset: number; end_offset: number;
  lag: number; member_id?: string; client_id?: string; error?: string;
}
export interface Member {
  member_id: string; instance_id: string | null; client_id: string; client_host: string;
  assignments: { topic: string; partitions: number[] }[];
}
export interface Group extends GroupSummary { member_list: Member[]; partitions: PartitionLag[] }
export interface Stats {
  interval_ms: number; t: number[]; records_per_sec: number[];
  topics: Record<string, (number | null)[]>; groups: Record<string, (number | null)[]>; groups_error?: string;
}
export interface Delivery { partition?: number; offset?: number; timestamp?: number; error?: string; code?: string }

export interface Transaction {
  transactional_id: string; coordinator: number; state: string; producer_id: number; producer_epoch: number;
  timeout_ms: number; start_ms: number | null; duration_ms: number | null;
  partitions: { topic: string; partitions: number[] }[]; error?: string;
}
export interface Transactions { states: string[]; transactions: Transaction[]; errors?: string[] }
export interface Producer {
  producer_id: number; producer_epoch: number; last_sequence: number; last_timestamp_ms: number;
  coordinator_epoch: number; txn_start_offset: number | null;
}
export interface TopicProducers {
  topic: string;
  partitions: { partition: number; leader: number; producers: Producer[]; error?: string }[];
}

export interface CleanerPartition {
  partition: number; reported: boolean; dirty_ratio: number; dirty_bytes: number;
  last_clean_ms: number | null; last_clean_seconds: number;
}
export interface TopicCleaner {
  topic: string; compacted: boolean; cleanup_policy: string; min_cleanable_dirty_ratio: number | null;
  available: boolean; message?: string; partitions: CleanerPartition[];
}

export const enc = encodeURIComponent;
