// The server's Prometheus metrics (prom-client, a registry of its own: two servers in one
// process do not share counters). Real histograms, not Triton's cumulative counters: queue
// wait, compute (per batch), decode and total latency, the batch size; requests by route
// pattern (never the raw URL: bounded label values) and status; queue depth and requests on
// their way to the queue read at scrape.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The metrics of one server.
 * @example const m = new ServeMetrics(() => [{ model: 'r18', depth: 0, arriving: 0 }]); m.requests.inc({ route: '/v2', method: 'GET', status: '200' });
 */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly total: Histogram<'route'>;
  readonly queueWait: Histogram<'model'>;
  readonly compute: Histogram<'model'>;
  readonly decode: Histogram<'model'>;
  readonly batchSize: Histogram<'model'>;
  readonly images: Counter<'model'>;

  constructor(depths: () => { model: string; depth: number; arriving: number }[]) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'resnet_http_requests_total', help: 'HTTP requests by route pattern, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.total = new Histogram({ name: 'resnet_request_duration_seconds', help: 'Time from request to response, by route pattern', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.queueWait = new Histogram({ name: 'resnet_queue_wait_seconds', help: 'Time a request waited in the batch queue', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.compute = new Histogram({ name: 'resnet_batch_compute_seconds', help: 'Time of one batch in the engine thread (forward and transfer)', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.decode = new Histogram({ name: 'resnet_decode_seconds', help: 'Time to decode and preprocess one image', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.batchSize = new Histogram({ name: 'resnet_batch_size', help: 'Rows per batch run by the engine', labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers });
    this.images = new Counter({ name: 'resnet_images_total', help: 'Images (rows) computed; rate() of it is images/s', labelNames: ['model'], registers });
    new Gauge({
      name: 'resnet_queue_depth', help: 'Requests waiting in the batch queue', labelNames: ['model'], registers,
      collect() { for (const { model, depth } of depths()) this.set({ model }, depth); },
    });
    new Gauge({
      name: 'resnet_requests_arriving', help: 'Inference requests on their way to the batch queue (body being read or image decoded)', labelNames: ['model'], registers,
      collect() { for (const { model, arriving } of depths()) this.set({ model }, arriving); },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'resnet_' });
  }

  /** Records one batch run by the engine. */
  batch(model: string, rows: number, computeMs: number): void {
    this.batchSize.observe({ model }, rows);
    this.compute.observe({ model }, computeMs / 1000);
    this.images.inc({ model }, rows);
  }
}
