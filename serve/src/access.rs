//! Routes declare what they need and how their errors are written; nothing is decided
//! from the request path.
//!
//! A listener's routes are built as [`Routes`], one [`Group`] at a time. A group's
//! [`Declared`] (its [`Access`] and its error [`Shape`]) becomes a route layer on every
//! route of the group, and an entry in the routes' table, so that a test can walk every
//! route a role serves from the router itself.
//!
//! At request time the serving layer ([`crate::layer`]) puts the listener's context in
//! the request's extensions; the route layer ([`Guarded`]) then, after routing:
//! 1. records the route's error shape, for the serving layer's own refusals (timeout,
//!    panic) and for handlers ([`shape_of`]);
//! 2. checks credentials, scope and tenant, and attaches the [`Grant`];
//! 3. takes one of the listener's concurrency slots for as long as the handler runs.
//!
//! A route that needs a scope and is reached without the serving layer answers 500:
//! failing closed, never open by accident.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::handler::Handler;
use axum::http::{Extensions, HeaderMap, Response};
use axum::routing::MethodRouter;
use axum::Router;
use tower::{Layer, Service};

use crate::auth::Scope;
use crate::layer::{Listener, Refusal, RefusalBody};
use crate::shapes::Shape;

/// What a route needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: readiness probes, the web UI's page and files.
    Open,
    /// Credentials with this scope (and, with multi-tenancy, a tenant they allow).
    Needs(Scope),
}

/// A group of routes' access and error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub access: Access,
    pub shape: Shape,
}

impl Declared {
    pub const fn open(shape: Shape) -> Self {
        Self { access: Access::Open, shape }
    }
    pub const fn read(shape: Shape) -> Self {
        Self { access: Access::Needs(Scope::Read), shape }
    }
    pub const fn write(shape: Shape) -> Self {
        Self { access: Access::Needs(Scope::Write), shape }
    }
    pub const fn admin(shape: Shape) -> Self {
        Self { access: Access::Needs(Scope::Admin), shape }
    }
}

/// What the credentials of a request were granted, attached to it by [`Guarded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The credentials' name in the tokens file.
    pub name: String,
    /// The tenant the request acts for: the one it named, or the only one its
    /// credentials allow. `None` when tenants are not kept apart, or for admin routes.
    pub tenant: Option<String>,
}

/// The tenant a request names, as its handler must read it: the granted tenant when
/// credentials were checked, else its `X-Scope-OrgID` header (auth off).
pub fn requested_tenant<'a>(extensions: &'a Extensions, headers: &'a HeaderMap) -> Option<&'a [u8]> {
    match granted_tenant(extensions) {
        Some(tenant) => Some(tenant.as_bytes()),
        None => headers.get(tracekeeper_model::TENANT_HEADER).map(|v| v.as_bytes()),
    }
}

/// The tenant the request's credentials were granted, if they were checked for one.
pub fn granted_tenant(extensions: &Extensions) -> Option<&str> {
    extensions.get::<Grant>().and_then(|grant| grant.tenant.as_deref())
}

/// The error shape the request's route declared ([`Shape::Text`] outside any route),
/// resolved for the request (OTLP follows the request's encoding).
pub fn shape_of(extensions: &Extensions) -> Shape {
    extensions.get::<Shape>().copied().unwrap_or(Shape::Text)
}

/// Where the route layer leaves the route's shape for the serving layer, which runs
/// before routing and writes the refusals for timeouts and panics.
#[derive(Clone, Default)]
pub(crate) struct ShapeSlot(pub(crate) Arc<OnceLock<Shape>>);

/// One row of a [`Routes`] table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The method the route answers.
    pub method: axum::http::Method,
    /// The router's pattern (`/api/traces/{trace_id}`), or `/*` for the fallback.
    pub path: String,
    pub declared: Declared,
}

/// A listener's routes and the table of what each declared.
#[derive(Clone)]
pub struct Routes {
    router: Router,
    table: Vec<RouteEntry>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("table", &self.table).finish()
    }
}

impl Routes {
    /// Both sets of routes on one router.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Answers every path no route matched with `handler`, declared like a route.
    pub fn fallback<H, T>(mut self, declared: Declared, handler: H) -> Routes
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        let service = Guarded { inner: handler.with_state(()), declared };
        self.router = self.router.fallback_service(service);
        self.table.push(RouteEntry { method: axum::http::Method::GET, path: "/*".into(), declared });
        self
    }

    /// Every route moved under `prefix` (a base path such as `/tracing`).
    pub fn nest(self, prefix: &str) -> Routes {
        let table = self
            .table
            .into_iter()
            .map(|entry| RouteEntry { path: format!("{prefix}{}", entry.path), ..entry })
            .collect();
        Routes { router: Router::new().nest(prefix, self.router), table }
    }

    /// What each route declared, in the order they were added.
    pub fn table(&self) -> &[RouteEntry] {
        &self.table
    }

    pub fn into_router(self) -> Router {
        self.router
    }
}

/// Routes that share one declaration and one state, built like an axum router.
pub struct Group<S> {
    declared: Declared,
    router: Router<S>,
    table: Vec<RouteEntry>,
}

impl<S: Clone + Send + Sync + 'static> Group<S> {
    pub fn new(declared: Declared) -> Self {
        Self { declared, router: Router::new(), table: Vec::new() }
    }

    fn add(mut self, method: axum::http::Method, path: &str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.table.push(RouteEntry { method, path: path.to_string(), declared: self.declared });
        self
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(axum::http::Method::GET, path, axum::routing::get(handler))
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(axum::http::Method::POST, path, axum::routing::post(handler))
    }

    /// The group's routes, behind its declaration, with their state.
    pub fn with_state(self, state: S) -> Routes {
        let router = self.router.route_layer(self.declared).with_state(state);
        Routes { router, table: self.table }
    }
}

impl Group<()> {
    /// The group's routes, for routes without state.
    pub fn done(self) -> Routes {
        self.with_state(())
    }
}

impl<S> Layer<S> for Declared {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded { inner, declared: *self }
    }
}

/// A route behind its declaration: see the module's documentation.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    declared: Declared,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, RB> Service<axum::http::Request<B>> for Guarded<S>
where
    S: Service<axum::http::Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: RefusalBody + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Answer<Response<RB>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        let declared = self.declared;
        let shape = declared.shape.resolve(request.headers());
        request.extensions_mut().insert(shape);
        if let Some(ShapeSlot(slot)) = request.extensions().get::<ShapeSlot>() {
            let _ = slot.set(shape);
        }
        let Some(listener) = request.extensions().get::<Arc<Listener>>().cloned() else {
            if declared.access == Access::Open {
                return Box::pin(self.inner.call(request));
            }
            tracing::error!("a route that needs credentials was reached outside the serving layer; refused");
            return Box::pin(std::future::ready(Ok(crate::layer::unguarded_refusal(shape))));
        };
        if let (Some(auth), Access::Needs(scope)) = (&listener.auth, declared.access) {
            match auth.authorize(request.headers(), scope) {
                Ok(grant) => {
                    request.extensions_mut().insert(grant);
                }
                Err(refused) => {
                    tracing::info!(?refused, "refused");
                    return Box::pin(std::future::ready(Ok(listener.refuse(Refusal::Auth(refused), shape))));
                }
            }
        }
        let Ok(permit) = listener.in_flight.clone().try_acquire_owned() else {
            tracing::warn!("refused: too many requests at once");
            return Box::pin(std::future::ready(Ok(listener.refuse(Refusal::Overloaded, shape))));
        };
        // The clone that was made ready is the one that serves (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let answer = inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(permit);
            response
        })
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
