// Type-level checks of the public API, as the README uses it (npm run typecheck; never run).
import { Herald, HeraldError, Retry, type Envelope, type PresenceEvent } from "../src/index.js";

declare function handle(data: unknown): Promise<boolean>;

export async function readme(): Promise<void> {
  const herald = new Herald({ url: "http://localhost:8080", token: process.env.HERALD_TOKEN });
  for await (const message of herald.subscribe("orders", { from: "earliest" })) {
    const envelope: Envelope = message;
    console.log(envelope.id, message.data);
  }
  for await (const item of herald.subscribe(["chat.*"], { presence: true, transport: "ws" })) {
    const either: Envelope | PresenceEvent = item;
    if ("kind" in either) console.log(either.client);
  }
  const worker = herald.consume(3, async ({ message }) => {
    if (!(await handle(message.data))) throw new Retry(10_000);
  }, { concurrency: 4 });
  await worker.stop();
  const { id } = await herald.publish("orders", { total: 150 }, { key: "customer-42", priority: "high" });
  const batch = await herald.publishBatch("orders", [{ total: 1 }], { idempotencyKey: "import-7" });
  const later = await herald.publish("orders", "later", { delay: 60_000 });
  if ("schedule_id" in later) console.log(id, batch.messages[0]?.id, later.deliver_at);
  try {
    await herald.publish("orders", { total: -1 });
  } catch (e) {
    if (e instanceof HeraldError) console.log(e.status, e.errors[0]?.path);
  }
  const view = await herald.subscriptions.get(3);
  console.log(view.ack_deadline, (await herald.topics.history("orders", { limit: 10 })).messages.length);
}
