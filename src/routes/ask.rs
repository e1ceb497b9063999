//! [`Ask`]: what an endpoint that reads the engine gets from its request, whichever port it
//! came in on: the shared state it reads, who asks and in which form.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};

use super::Form;
use super::Service;
use crate::access::{Policy, Viewer};
use crate::checks::Health;
use crate::shutdown::Lifecycle;

/// One request to the probes or the page. Rocket's routes take it as a guard; the health
/// port's router makes one from its own state.
pub(crate) struct Ask<'a> {
    pub health: &'a Health,
    pub lifecycle: &'a Lifecycle,
    pub service: &'a Service,
    pub policy: &'a Policy,
    /// Whether error texts are shown.
    pub viewer: Viewer,
    /// The form asked for.
    pub form: Form,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Ask<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        // Managed by vitals' stages before its routes are mounted: never missing in practice.
        let state = (
            rocket.state::<Health>(),
            rocket.state::<Lifecycle>(),
            rocket.state::<Service>(),
            rocket.state::<Policy>(),
        );
        let (Some(health), Some(lifecycle), Some(service), Some(policy)) = state else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let authorization = req.headers().get_one("Authorization");
        let path = req.uri().path();
        Outcome::Success(Ask {
            health,
            lifecycle,
            service,
            policy,
            viewer: policy.viewer(authorization, req.method().as_str(), path.as_str()),
            form: Form::of(req),
        })
    }
}
