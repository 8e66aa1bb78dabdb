//! `Lookups`: the cross-tenant reads before authentication. Each returns the scope derived
//! from the row it found.
//!
//! INVARIANT: on PostgreSQL each runs in a transaction that sees only what its narrow
//! SELECT-only policy shows (`begin_client`, `begin_credential`, `begin_login`,
//! `begin_resource`).

macro_rules! lookups {
    ($store:ty) => {
        #[async_trait]
        impl Lookups for $store {
            async fn find_key_by_secret(
                &self,
                hash: &[u8],
            ) -> Result<Option<(KeySecretMatch, TenantScope)>, StoreError> {
                let Some(row) = self.find_key_impl(hash).await? else {
                    return Ok(None);
                };
                let found = KeySecretMatch {
                    agency: col(&row, "agency_id")?,
                    key: col(&row, "key_id")?,
                    valid_until: row.try_get("valid_until")?,
                };
                let scope = TenantScope::derived(found.agency.clone());
                Ok(Some((found, scope)))
            }

            async fn find_client(
                &self,
                id: &AppId,
            ) -> Result<Option<(ClientRecord, TenantScope)>, StoreError> {
                self.find_client_impl(id).await
            }

            async fn client_installations(
                &self,
                app: &AppId,
            ) -> Result<Vec<(Installation, TenantScope)>, StoreError> {
                self.client_installations_impl(app).await
            }

            async fn redeem_code(
                &self,
                hash: &[u8],
                now: i64,
            ) -> Result<Option<(CodeRedemption, TenantScope)>, StoreError> {
                self.redeem_code_impl(hash, now).await
            }

            async fn find_refresh_token(
                &self,
                hash: &[u8],
            ) -> Result<Option<(RefreshToken, Grant, TenantScope)>, StoreError> {
                self.find_refresh_token_impl(hash).await
            }

            async fn find_users_by_email(
                &self,
                email: &str,
            ) -> Result<Vec<(UserCredential, TenantScope)>, StoreError> {
                self.find_users_by_email_impl(email).await
            }

            async fn find_resource_server(
                &self,
                identifier: &str,
            ) -> Result<Option<(ResourceServer, TenantScope)>, StoreError> {
                self.find_resource_server_impl(identifier).await
            }
        }
    };
}

pub(crate) use lookups;
