//! `TenantData`: each method delegates to its aggregate's implementation (`accounts.rs`,
//! `users.rs`, …), so that each aggregate's SQL sits in its own file.
//!
//! INVARIANT: every method passes its `TenantScope` on; none reads another agency.

macro_rules! tenant_data {
    ($store:ty) => {
        #[async_trait]
        impl TenantData for $store {
            async fn create_account(
                &self,
                t: &TenantScope,
                a: &Account,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_account_impl(t, a, audit).await
            }

            async fn get_account(
                &self,
                t: &TenantScope,
                id: &AccountId,
            ) -> Result<Account, StoreError> {
                self.get_account_impl(t, id).await
            }

            async fn list_accounts(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<Account>, StoreError> {
                self.list_accounts_impl(t, page).await
            }

            async fn update_account(
                &self,
                t: &TenantScope,
                id: &AccountId,
                name: &str,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<Account, StoreError> {
                self.update_account_impl(t, id, name, now, audit).await
            }

            async fn set_account_suspended(
                &self,
                t: &TenantScope,
                id: &AccountId,
                reason: Option<&str>,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<(Account, bool), StoreError> {
                self.set_account_suspended_impl(t, id, reason, now, audit)
                    .await
            }

            async fn delete_account(
                &self,
                t: &TenantScope,
                id: &AccountId,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.delete_account_impl(t, id, now, audit).await
            }

            async fn create_user(
                &self,
                t: &TenantScope,
                u: &NewUser,
                audit: &AuditRecord,
            ) -> Result<User, StoreError> {
                self.create_user_impl(t, u, audit).await
            }

            async fn get_user(&self, t: &TenantScope, id: &UserId) -> Result<User, StoreError> {
                self.get_user_impl(t, id).await
            }

            async fn list_users(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<User>, StoreError> {
                self.list_users_impl(t, page).await
            }

            async fn update_user(
                &self,
                t: &TenantScope,
                id: &UserId,
                p: &UserPatch,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<User, StoreError> {
                self.update_user_impl(t, id, p, now, audit).await
            }

            async fn delete_user(
                &self,
                t: &TenantScope,
                id: &UserId,
                _now: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.delete_user_impl(t, id, _now, audit).await
            }

            async fn create_binding(
                &self,
                t: &TenantScope,
                b: &Binding,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_binding_impl(t, b, audit).await
            }

            async fn get_binding(
                &self,
                t: &TenantScope,
                id: &BindingId,
            ) -> Result<Binding, StoreError> {
                self.get_binding_impl(t, id).await
            }

            async fn list_bindings(
                &self,
                t: &TenantScope,
                principal: Option<&PrincipalId>,
                page: &PageRequest,
            ) -> Result<Page<Binding>, StoreError> {
                self.list_bindings_impl(t, principal, page).await
            }

            async fn principal_bindings(
                &self,
                t: &TenantScope,
                principal: &PrincipalId,
            ) -> Result<Vec<Binding>, StoreError> {
                self.principal_bindings_impl(t, principal).await
            }

            async fn delete_binding(
                &self,
                t: &TenantScope,
                id: &BindingId,
                _now: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.delete_binding_impl(t, id, _now, audit).await
            }

            async fn create_role(
                &self,
                t: &TenantScope,
                r: &Role,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_role_impl(t, r, audit).await
            }

            async fn get_role(&self, t: &TenantScope, id: &RoleId) -> Result<Role, StoreError> {
                self.get_role_impl(t, id).await
            }

            async fn list_roles(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<Role>, StoreError> {
                self.list_roles_impl(t, page).await
            }

            async fn update_role(
                &self,
                t: &TenantScope,
                id: &RoleId,
                p: &RolePatch,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<Role, StoreError> {
                self.update_role_impl(t, id, p, now, audit).await
            }

            async fn delete_role(
                &self,
                t: &TenantScope,
                id: &RoleId,
                remove_bindings: bool,
                _now: i64,
                audit: &AuditRecord,
            ) -> Result<u64, StoreError> {
                self.delete_role_impl(t, id, remove_bindings, _now, audit)
                    .await
            }

            async fn count_role_bindings(
                &self,
                t: &TenantScope,
                id: &RoleId,
            ) -> Result<u64, StoreError> {
                self.count_role_bindings_impl(t, id).await
            }

            async fn create_policy(
                &self,
                t: &TenantScope,
                p: &Policy,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_policy_impl(t, p, audit).await
            }

            async fn get_policy(
                &self,
                t: &TenantScope,
                id: &PolicyId,
            ) -> Result<Policy, StoreError> {
                self.get_policy_impl(t, id).await
            }

            async fn list_policies(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<Policy>, StoreError> {
                self.list_policies_impl(t, page).await
            }

            async fn delete_policy(
                &self,
                t: &TenantScope,
                id: &PolicyId,
                _now: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.delete_policy_impl(t, id, _now, audit).await
            }

            async fn create_api_key(
                &self,
                t: &TenantScope,
                k: &ApiKey,
                secret: &SecretHashRecord,
                bindings: &[Binding],
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_api_key_impl(t, k, secret, bindings, audit)
                    .await
            }

            async fn get_agency_limits(
                &self,
                t: &TenantScope,
            ) -> Result<Option<AgencyLimitsRecord>, StoreError> {
                self.get_agency_limits_impl(t).await
            }

            async fn put_agency_limits(
                &self,
                t: &TenantScope,
                l: &AgencyLimitsRecord,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.put_agency_limits_impl(t, l, audit).await
            }

            async fn get_api_key(&self, t: &TenantScope, id: &KeyId) -> Result<ApiKey, StoreError> {
                self.get_api_key_impl(t, id).await
            }

            async fn list_api_keys(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<ApiKey>, StoreError> {
                self.list_api_keys_impl(t, page).await
            }

            async fn revoke_api_key(
                &self,
                t: &TenantScope,
                id: &KeyId,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<ApiKey, StoreError> {
                self.revoke_api_key_impl(t, id, now, audit).await
            }

            async fn rotate_api_key(
                &self,
                t: &TenantScope,
                id: &KeyId,
                secret: &SecretHashRecord,
                old_valid_until: i64,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<ApiKey, StoreError> {
                self.rotate_api_key_impl(t, id, secret, old_valid_until, now, audit)
                    .await
            }

            async fn touch_api_keys(
                &self,
                uses: &[(TenantScope, KeyId, i64)],
            ) -> Result<(), StoreError> {
                self.touch_api_keys_impl(uses).await
            }

            async fn create_app(
                &self,
                t: &TenantScope,
                app: &App,
                secret: Option<&SecretHashRecord>,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_app_impl(t, app, secret, audit).await
            }

            async fn get_app(&self, t: &TenantScope, id: &AppId) -> Result<App, StoreError> {
                self.get_app_impl(t, id).await
            }

            async fn list_apps(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<App>, StoreError> {
                self.list_apps_impl(t, page).await
            }

            async fn update_app(
                &self,
                t: &TenantScope,
                id: &AppId,
                update: &AppUpdate,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<App, StoreError> {
                self.update_app_impl(t, id, update, now, audit).await
            }

            async fn delete_app(
                &self,
                t: &TenantScope,
                id: &AppId,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<App, StoreError> {
                self.delete_app_impl(t, id, now, audit).await
            }

            async fn rotate_app_secret(
                &self,
                t: &TenantScope,
                id: &AppId,
                secret: &SecretHashRecord,
                old_valid_until: i64,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<App, StoreError> {
                self.rotate_app_secret_impl(t, id, secret, old_valid_until, now, audit)
                    .await
            }

            async fn create_installation(
                &self,
                t: &TenantScope,
                ins: &Installation,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_installation_impl(t, ins, audit).await
            }

            async fn get_installation(
                &self,
                t: &TenantScope,
                id: &InstallationId,
            ) -> Result<Installation, StoreError> {
                self.get_installation_impl(t, id).await
            }

            async fn list_installations(
                &self,
                t: &TenantScope,
                account: Option<&AccountId>,
                page: &PageRequest,
            ) -> Result<Page<Installation>, StoreError> {
                self.list_installations_impl(t, account, page).await
            }

            async fn revoke_installation(
                &self,
                t: &TenantScope,
                id: &InstallationId,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<Installation, StoreError> {
                self.revoke_installation_impl(t, id, now, audit).await
            }

            async fn create_code(
                &self,
                t: &TenantScope,
                code: &AuthCode,
            ) -> Result<(), StoreError> {
                self.create_code_impl(t, code).await
            }

            async fn create_grant(
                &self,
                t: &TenantScope,
                grant: &Grant,
                refresh: Option<&NewRefreshToken>,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_grant_impl(t, grant, refresh, audit).await
            }

            async fn get_grant(&self, t: &TenantScope, id: &str) -> Result<Grant, StoreError> {
                self.get_grant_impl(t, id).await
            }

            async fn revoke_grant(
                &self,
                t: &TenantScope,
                id: &str,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<bool, StoreError> {
                self.revoke_grant_impl(t, id, now, audit).await
            }

            async fn rotate_refresh_token(
                &self,
                t: &TenantScope,
                old_hash: &[u8],
                new: &NewRefreshToken,
                now: i64,
                grace_ms: i64,
                audit: &AuditRecord,
            ) -> Result<RefreshUse, StoreError> {
                self.rotate_refresh_token_impl(t, old_hash, new, now, grace_ms, audit)
                    .await
            }

            async fn revoke_access_token(
                &self,
                t: &TenantScope,
                jti: &str,
                expires_at: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.revoke_access_token_impl(t, jti, expires_at, audit)
                    .await
            }

            async fn create_resource_server(
                &self,
                t: &TenantScope,
                r: &ResourceServer,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.create_resource_server_impl(t, r, audit).await
            }

            async fn get_resource_server(
                &self,
                t: &TenantScope,
                id: &ResourceServerId,
            ) -> Result<ResourceServer, StoreError> {
                self.get_resource_server_impl(t, id).await
            }

            async fn list_resource_servers(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<ResourceServer>, StoreError> {
                self.list_resource_servers_impl(t, page).await
            }

            async fn delete_resource_server(
                &self,
                t: &TenantScope,
                id: &ResourceServerId,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                self.delete_resource_server_impl(t, id, audit).await
            }
        }
    };
}

pub(crate) use tenant_data;
