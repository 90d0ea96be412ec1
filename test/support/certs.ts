/** Test certificates: node:crypto cannot issue them, so openssl does. */
import { spawnSync } from 'node:child_process';

/** A fresh self-signed P-256 certificate and key, valid a day; `san` e.g. 'IP:127.0.0.1'.
 *  Returns openssl's error output when it failed (or is not installed), else undefined. */
export function selfSigned(keyFile: string, certFile: string, subject: string, san?: string): string | undefined {
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  args.push('-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', subject);
  if (san) args.push('-addext', `subjectAltName=${san}`);
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return r.status === 0 ? undefined : r.error?.message || r.stderr || `exit ${r.status}`;
}
