# A copy of ../shared/bench/fastapi_seed_app.py, the reference the benchmark
# compares llmgw with, kept here so that bench/run.sh measures it from any
# clone.  Run by bench/bench.js under uvicorn (FASTAPI_DIR overrides where).
"""The reference FastAPI LLM API service (the common pattern), as Debian's packages allow.

The anthropic SDK is not packaged, so the Messages API is called with httpx
(which the SDK itself uses). Routes, models and auth follow the common pattern.
Env: UPSTREAM (default http://127.0.0.1:9100), API_TOKEN.
"""
import json
import os

import httpx
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:9100")
HEADERS = {"x-api-key": os.environ.get("ANTHROPIC_API_KEY", "stub"),
           "anthropic-version": "2023-06-01"}

app = FastAPI()
client = httpx.AsyncClient(base_url=UPSTREAM, headers=HEADERS, timeout=600,
                           limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200))
security = HTTPBearer()


async def verify_token(credentials: HTTPAuthorizationCredentials = Security(security)):
    if credentials.credentials != os.environ.get("API_TOKEN", "secret"):
        raise HTTPException(status_code=401, detail="Invalid token")
    return credentials.credentials


class ChatRequest(BaseModel):
    message: str
    model: str = "claude-sonnet-4-6"
    max_tokens: int = 1024


class ChatResponse(BaseModel):
    reply: str
    input_tokens: int
    output_tokens: int


def body(request: ChatRequest, stream: bool):
    return {"model": request.model, "max_tokens": request.max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": request.message}]}


@app.post("/chat", response_model=ChatResponse)
async def chat(request: ChatRequest, token: str = Depends(verify_token)):
    r = await client.post("/v1/messages", json=body(request, False))
    if r.status_code == 529:
        raise HTTPException(status_code=503, detail="AI service temporarily unavailable")
    if r.status_code != 200:
        raise HTTPException(status_code=500, detail="AI service error")
    m = r.json()
    return ChatResponse(reply=m["content"][0]["text"], input_tokens=m["usage"]["input_tokens"],
                        output_tokens=m["usage"]["output_tokens"])


@app.post("/chat/stream")
async def chat_stream(request: ChatRequest, token: str = Depends(verify_token)):
    async def generate():
        async with client.stream("POST", "/v1/messages", json=body(request, True)) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    ev = json.loads(line[6:])
                    if ev.get("type") == "content_block_delta":
                        yield f"data: {ev['delta']['text']}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(generate(), media_type="text/event-stream")
