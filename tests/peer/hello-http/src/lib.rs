//! Answers every request with a short text, as `wasmtime serve`'s own hello example:
//! the peer in `payhost bench peer`, next to payhost's template route.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

use std::io::Write as _;

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(response_out, Ok(response));
        let mut out = body.write().expect("the body's stream");
        out.write_all(b"Hello from wasi:http").expect("write");
        out.flush().expect("flush");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish");
    }
}

#[cfg(target_arch = "wasm32")]
wasip2::http::proxy::export!(Hello);
