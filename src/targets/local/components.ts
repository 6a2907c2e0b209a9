import type { LocalPlatform } from './platform.js';

/**
 * Plug the components the spec needs into the platform: the stream and its event source mappings,
 * PostgreSQL and retention, the analytics channels, pipelines and datasets.
 */
export async function attachComponents(_platform: LocalPlatform): Promise<void> {
  // Filled in as the stream, database and analytics components land.
}
