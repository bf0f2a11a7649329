//! HTTP plumbing shared by the fake services: error bodies in each service's own shape,
//! the Nova microversion header, and the `X-Auth-Token` check.
//!
//! Error bodies copy what the real services send, because the real client reads them:
//! Nova `{"forbidden": {"code": 403, "message": ..}}`, Keystone (and every service's auth
//! middleware) `{"error": {"code", "message", "title"}}`, Neutron
//! `{"NeutronError": {"type", "message", "detail"}}`, Glance plain text.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use crate::state::{State, TokenInfo};

/// Query parameters in the order the client sent them (repeats kept).
pub(crate) type Params = Vec<(String, String)>;

/// `Params` from literal pairs, for the handlers' unit tests.
#[cfg(test)]
pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The service an answer comes from (decides the error body shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Svc {
    Identity,
    Compute,
    Image,
    Network,
}

/// An error answer of a fake service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub svc: Svc,
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(svc: Svc, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            svc,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }

    /// Nova's 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(Svc::Compute, 400, message)
    }

    /// The answer of keystonemiddleware (and Keystone) to a missing or refused credential.
    pub fn unauthorized(svc: Svc) -> Self {
        ApiError::new(
            svc,
            401,
            "The request you have made requires authentication.",
        )
    }
}

/// The top-level key Nova uses for an error of `status`.
fn nova_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        403 => "forbidden",
        404 => "itemNotFound",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        413 => "overLimit",
        429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = match (self.svc, code) {
            (_, 401) | (Svc::Identity, _) => {
                json!({"error": {"code": code, "message": self.message, "title": title}})
            }
            (Svc::Compute, _) => {
                json!({ nova_key(self.status): {"code": code, "message": self.message} })
            }
            (Svc::Network, _) => json!({"NeutronError": {
                "type": title.replace(' ', ""), "message": self.message, "detail": ""}}),
            (Svc::Image, _) => {
                let text = format!("{code} {title}\n\n{}\n\n   ", self.message);
                return (self.status, text).into_response();
            }
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// A Nova API microversion, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Microversion(pub u32, pub u32);

impl Microversion {
    /// The oldest microversion the fake serves (and the default without a header).
    pub const MIN: Microversion = Microversion(2, 1);
    /// The newest microversion the fake serves (Nova 2023.1 "Antelope" and later: 2.95;
    /// the Zed stack of the integration tests: 2.93).
    pub const MAX: Microversion = Microversion(2, 93);

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Microversion(major, minor)
    }

    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_str(&format!("compute {}.{}", self.0, self.1))
            .unwrap_or_else(|_| HeaderValue::from_static("compute 2.1"))
    }
}

fn parse_version(text: &str) -> Option<Microversion> {
    if text.eq_ignore_ascii_case("latest") {
        return Some(Microversion::MAX);
    }
    let (major, minor) = text.split_once('.')?;
    Some(Microversion(major.parse().ok()?, minor.parse().ok()?))
}

/// The microversion a compute request asks for: `OpenStack-API-Version: compute X.Y`
/// (possibly among other services), else `X-OpenStack-Nova-API-Version`, else 2.1.
///
/// # Errors
///
/// 400 for a malformed version, 406 for one outside [`Microversion::MIN`]..=[`Microversion::MAX`].
pub(crate) fn microversion(headers: &HeaderMap) -> Result<Microversion, ApiError> {
    let from_new = headers
        .get_all("OpenStack-API-Version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let mut words = part.split_whitespace();
            match (words.next(), words.next()) {
                (Some(svc), Some(ver)) if svc.eq_ignore_ascii_case("compute") => {
                    Some(ver.to_string())
                }
                _ => None,
            }
        });
    let text = from_new.or_else(|| {
        headers
            .get("X-OpenStack-Nova-API-Version")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    });
    let Some(text) = text else {
        return Ok(Microversion::MIN);
    };
    let v = parse_version(&text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if v < Microversion::MIN || v > Microversion::MAX {
        return Err(ApiError::new(
            Svc::Compute,
            406,
            format!(
                "Version {}.{} is not supported by the API. Minimum is {}.{} and maximum is {}.{}.",
                v.0,
                v.1,
                Microversion::MIN.0,
                Microversion::MIN.1,
                Microversion::MAX.0,
                Microversion::MAX.1
            ),
        ));
    }
    Ok(v)
}

/// The valid, unexpired token of `X-Auth-Token`.
///
/// # Errors
///
/// 401 in the middleware's shape when the header is missing, unknown or expired.
pub(crate) fn authorize(
    state: &State,
    headers: &HeaderMap,
    svc: Svc,
) -> Result<TokenInfo, ApiError> {
    let value = headers
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized(svc))?;
    match state.tokens.get(value) {
        Some(t) if t.expires_at > Utc::now() => Ok(t.clone()),
        _ => Err(ApiError::unauthorized(svc)),
    }
}

/// Like [`authorize`], for services that need a project-scoped token (all but Keystone).
///
/// # Errors
///
/// 401 as [`authorize`]; 403 for an unscoped token.
pub(crate) fn authorize_project(
    state: &State,
    headers: &HeaderMap,
    svc: Svc,
) -> Result<(TokenInfo, crate::state::Project), ApiError> {
    let t = authorize(state, headers, svc)?;
    let p = t.project.clone().ok_or_else(|| {
        ApiError::new(
            svc,
            403,
            "Policy doesn't allow this operation: the token is not scoped to a project.",
        )
    })?;
    Ok((t, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn microversion_comes_from_either_header_and_defaults_to_2_1() {
        let mv = |pairs| microversion(&headers(pairs));
        assert_eq!(mv(&[]), Ok(Microversion(2, 1)));
        assert_eq!(
            mv(&[("OpenStack-API-Version", "volume 3.0, compute 2.52")]),
            Ok(Microversion(2, 52))
        );
        assert_eq!(
            mv(&[("X-OpenStack-Nova-API-Version", "2.26")]),
            Ok(Microversion(2, 26))
        );
        assert_eq!(
            mv(&[("OpenStack-API-Version", "compute latest")]),
            Ok(Microversion::MAX)
        );
    }

    #[test]
    fn unsupported_microversion_is_406_and_garbage_is_400() {
        let e = microversion(&headers(&[("OpenStack-API-Version", "compute 2.200")]))
            .expect_err("too new");
        assert_eq!(e.status.as_u16(), 406);
        assert!(e.message.contains("maximum is 2.93"), "{}", e.message);
        let e = microversion(&headers(&[("OpenStack-API-Version", "compute two")]))
            .expect_err("garbage");
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn versions_order_numerically_not_textually() {
        assert!(Microversion(2, 52) > Microversion(2, 6));
        assert!(Microversion(2, 52).at_least(2, 26));
        assert!(!Microversion(2, 3).at_least(2, 26));
    }
}
