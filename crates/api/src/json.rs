//! Request extractors that refuse a NUL character (U+0000) anywhere in what they read.
//! PostgreSQL text and jsonb cannot hold one, so it would otherwise reach the database and come
//! back as a 500. The answer is 422 naming where it was: a JSON path (`reason`, `items[2].name`),
//! a path parameter or a query parameter. Routes use these instead of `web::Json` and `web::Path`;
//! query strings go through [`query_pairs`].

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

const NUL: &str = "must not contain a NUL character (U+0000)";

fn refuse(field: String) -> ApiError {
    ApiError::Validation {
        field,
        reason: NUL.into(),
    }
}

/// Where the first NUL in a JSON document is, as a path (`a.b[2].c`; `body` for the document
/// itself); a NUL in a member name is reported at the member.
pub fn nul_path(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(members) => members.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // The name itself may hold the NUL; it is shown escaped.
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".into() } else { path })
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// A JSON body (under the app's `JsonConfig`: size limit, content type, problem answers) with no
/// NUL in any string or member name; then read as `T` (a wrong shape is 422 `body`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            if let Some(field) = nul_path(&value) {
                return Err(refuse(field).into());
            }
            serde_json::from_value(value).map(Json).map_err(|e| {
                ApiError::Validation {
                    field: "body".into(),
                    reason: e.to_string(),
                }
                .into()
            })
        })
    }
}

/// A JSON body that may be left out: a request without one (no `Content-Length` and no
/// `Transfer-Encoding`, or `Content-Length: 0`) reads as `T::default()`, so an action that needs
/// no parameters is a bare `POST`; a body that is sent is read exactly as [`Json`] reads it.
#[derive(Debug)]
pub struct JsonOrEmpty<T>(pub T);

impl<T> JsonOrEmpty<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonOrEmpty<T> {
    type Error = actix_web::Error;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let empty = match headers.get(actix_web::http::header::CONTENT_LENGTH) {
            Some(length) => length.as_bytes() == b"0",
            None => !headers.contains_key(actix_web::http::header::TRANSFER_ENCODING),
        };
        if empty {
            return Box::pin(async { Ok(JsonOrEmpty(T::default())) });
        }
        let body = Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(JsonOrEmpty(body.await?.into_inner())) })
    }
}

/// Path parameters, refused (422 naming the parameter) when one holds a NUL (`%00`).
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T> Path<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Path<T> {
    type Error = actix_web::Error;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let nul = req
            .match_info()
            .iter()
            .find(|(_, v)| decoded_has_nul(v))
            .map(|(name, _)| name.to_owned());
        let path = web::Path::<T>::from_request(req, payload);
        Box::pin(async move {
            if let Some(name) = nul {
                return Err(refuse(name).into());
            }
            Ok(Path(path.await?.into_inner()))
        })
    }
}

/// Whether a path segment holds a NUL, raw or still percent-encoded (the router leaves some
/// escapes for the deserializer to decode).
fn decoded_has_nul(segment: &str) -> bool {
    segment.contains('\0')
        || segment
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// The query string as decoded name–value pairs; 400 when it cannot be read, 422 naming the
/// parameter when a name or value holds a NUL.
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?
        .into_inner();
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, v)| n.contains('\0') || v.contains('\0'))
    {
        return Err(refuse(name.replace('\0', "\\u0000")));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_path_names_where_the_nul_is() {
        assert_eq!(
            nul_path(&json!({ "reason": "a\u{0}b" })).as_deref(),
            Some("reason")
        );
        assert_eq!(
            nul_path(&json!({ "items": [{ "name": "ok" }, {}, { "name": "\u{0}" }] })).as_deref(),
            Some("items[2].name")
        );
        assert_eq!(
            nul_path(&json!({ "value": { "days": 400, "x\u{0}": 1 } })).as_deref(),
            Some("value.x\\u0000")
        );
        assert_eq!(nul_path(&json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(
            nul_path(&json!({ "a": [1, "two", null, { "b": true }] })),
            None
        );
    }

    #[test]
    fn escaped_nuls_in_path_segments_are_seen() {
        assert!(decoded_has_nul("ab%00"));
        assert!(decoded_has_nul("a\0"));
        assert!(!decoded_has_nul("ratelimit.officer"));
        assert!(!decoded_has_nul("%2F"));
    }
}
