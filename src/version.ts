// The package version, read once from package.json (one source of truth).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageJson(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const p = join(dir, 'package.json');
      const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (j.name === 'resnet-ts' && j.version) return j.version;
    } catch { /* keep walking up */ }
    dir = dirname(dir);
  }
  return '0.0.0';
}

/** @example console.log(`resnet-ts ${VERSION}`); */
export const VERSION: string = findPackageJson();
