// The browser feed's script: subscribes with herald-client (SSE over fetch, so a token
// works), resumes exactly after reconnects, and keeps its place across page loads.
import { Herald } from "../dist/index.js";

const params = new URLSearchParams(window.location.search);
const herald = new Herald({ url: params.get("herald") ?? window.location.origin, token: params.get("token") ?? undefined });
const topic = params.get("topic") ?? "news";
const key = `herald-feed:${topic}`;
const feed = document.getElementById("feed");
const state = document.getElementById("state");

function show(envelope) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date(envelope.time).toLocaleTimeString();
  item.append(time, typeof envelope.data === "string" ? envelope.data : JSON.stringify(envelope.data));
  feed.prepend(item);
}

document.getElementById("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  await herald.publish(topic, input.value);
  input.value = "";
});

const subscription = herald.subscribe(topic, {
  from: window.localStorage.getItem(key) ?? "earliest",
  transport: params.get("transport") === "ws" ? "ws" : "sse",
  onState: (s) => (state.textContent = s),
  onGap: (gap) => (state.textContent = `missed messages up to ${gap.oldest_available}`),
});
try {
  for await (const envelope of subscription) {
    show(envelope);
    window.localStorage.setItem(key, String(envelope.id));
  }
} catch (error) {
  state.textContent = `stopped: ${error.message}`;
}
