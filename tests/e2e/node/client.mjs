// client.mjs - the official openai SDK against archrouter serve, for test_cli_serve.c.
// usage: node client.mjs BASE_URL API_KEY
// Prints one JSON object: the non-streamed completion's content and route headers, and the
// streamed completion's concatenated deltas and chunk count.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const messages = [{ role: "user", content: "write code for a parser" }];

const { data, response } = await client.chat.completions
  .create({ model: "mock/json", messages })
  .withResponse();
const out = {
  content: data.choices[0].message.content,
  route: response.headers.get("x-archrouter-route"),
  model: response.headers.get("x-archrouter-model"),
  request_id: response.headers.get("x-request-id"),
};

const stream = await client.chat.completions.create({ model: "mock/sse", messages, stream: true });
let text = "";
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  text += chunk.choices[0]?.delta?.content ?? "";
}
out.stream_text = text;
out.stream_chunks = chunks;
console.log(JSON.stringify(out));
