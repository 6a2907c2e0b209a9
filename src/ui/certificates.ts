import type { CertificateRow } from '../services/certificates.js';

/** The columns of a certificate table (`device list --expiring`, `device show`). */
export const certificateColumns = [
  { header: 'Thing', get: (r: CertificateRow) => r.thingName ?? '(none)' },
  { header: 'Certificate', get: (r: CertificateRow) => r.certificateId.slice(0, 12) },
  { header: 'Status', get: (r: CertificateRow) => r.status },
  { header: 'Not after', get: (r: CertificateRow) => r.notAfter ?? '' },
  { header: 'Days left', get: (r: CertificateRow) => (r.daysLeft === null ? '' : r.expiry === 'expired' ? `expired (${r.daysLeft})` : String(r.daysLeft)) },
  { header: 'Rotation', get: (r: CertificateRow) => r.rotation ?? '' },
];
