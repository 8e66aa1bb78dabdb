//! What a route declares: its permission, where its tenant and resource come from, and
//! whether Tessera's `/v1/check` (roles and ABAC policies) must also allow it.
//! INVARIANT: a rule always names a permission (there is no constructor without one).

/// A route's declaration. Start with [`Rule::permission`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(crate) permission: String,
    pub(crate) agency_param: Option<String>,
    pub(crate) account_param: Option<String>,
    pub(crate) id_param: Option<String>,
    pub(crate) check: bool,
}

impl Rule {
    /// The route needs `permission` (a catalog permission such as `contacts.read`), carried
    /// by the credential's scopes. The tenant is the credential's own.
    pub fn permission(permission: impl Into<String>) -> Self {
        Self {
            permission: permission.into(),
            agency_param: None,
            account_param: None,
            id_param: None,
            check: false,
        }
    }

    /// The agency comes from path parameter `param` (`{agency}`); another agency's is 404.
    pub fn agency_from(mut self, param: &str) -> Self {
        self.agency_param = Some(param.to_owned());
        self
    }

    /// The account comes from path parameter `param` (`{account}`); for a credential bound to
    /// another account it is 404.
    pub fn account_from(mut self, param: &str) -> Self {
        self.account_param = Some(param.to_owned());
        self
    }

    /// The resource id comes from path parameter `param` (`{id}`), for the ABAC check.
    pub fn resource_from(mut self, param: &str) -> Self {
        self.id_param = Some(param.to_owned());
        self
    }

    /// Also ask Tessera's `POST /v1/check` (the principal's roles and the ABAC policies),
    /// with the permission's resource type from the catalog.
    pub fn with_check(mut self) -> Self {
        self.check = true;
        self
    }

    /// The permission.
    pub fn permission_name(&self) -> &str {
        &self.permission
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &str> {
        [&self.agency_param, &self.account_param, &self.id_param]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}
