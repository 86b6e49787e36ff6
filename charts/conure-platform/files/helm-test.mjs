// `helm test` check of chart conure-platform, run by the image's node: GET <PLATFORM_URL>/health
// answers 200 with {"status":"healthy"}, retried until TIMEOUT_MS (default 30000) runs out.
const url = new URL('/health', process.env.PLATFORM_URL);
const deadline = Date.now() + Number(process.env.TIMEOUT_MS || 30000);
let last = '';
for (;;) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    last = `${res.status} ${text.slice(0, 300)}`;
    if (res.status === 200 && JSON.parse(text).status === 'healthy') {
      console.log(`helm-test: ok: ${url} ${last}`);
      process.exit(0);
    }
  } catch (err) {
    last = err.message;
  }
  if (Date.now() > deadline) {
    console.error(`helm-test: FAIL: ${url}: ${last}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 1000));
}
