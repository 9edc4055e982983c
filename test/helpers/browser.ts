// What the browser tests watch on a page: console errors and uncaught exceptions, and every
// request outside what the page may load (aborted, and listed so the test can say which).

import type { Page } from 'playwright-core';

export interface PageWatch {
  /** Console errors and uncaught exceptions, in order. */
  errors: string[];
  /** URLs the page asked for outside `allowed` (each request was aborted). */
  external: string[];
}

/** Starts watching `page`; requests whose URL starts with `allowed` go through. */
export async function watchPage(page: Page, allowed: string): Promise<PageWatch> {
  const watch: PageWatch = { errors: [], external: [] };
  page.on('console', (m) => { if (m.type() === 'error') watch.errors.push(m.text()); });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  await page.route('**/*', (route) => {
    if (route.request().url().startsWith(allowed)) return route.continue();
    watch.external.push(route.request().url());
    return route.abort();
  });
  return watch;
}
