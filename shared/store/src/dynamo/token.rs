//! [`TokenStore`] on DynamoDB: the item described in `crate::token`, read with a consistent
//! GetItem, its lock taken and released with conditional UpdateItems (no read first).
//!
//! | operation | DynamoDB call |
//! |---|---|
//! | `load_token` | GetItem `TOKEN#{name}` / `#TOKEN`, ConsistentRead |
//! | `begin_refresh` | UpdateItem SET `refresh_holder`, `refresh_until`, `entity`; condition: `generation` is the one seen (absent counts as 0) AND (no `refresh_holder` OR `refresh_until <= :now`) |
//! | `finish_refresh` | UpdateItem SET the token, `generation = generation + 1`, REMOVE the lock; condition: `refresh_holder = :holder` |
//! | `abandon_refresh` | UpdateItem REMOVE the lock; condition: `refresh_holder = :holder` |

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use parkpay_domain::Timestamp;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::aggregate::key_item;
use super::{DynamoStore, entity_from_item, op_error, sdk_message, string};
use crate::keys::{ENTITY, Entity};
use crate::token::{
    self, ACCESS_TOKEN, EXPIRES_AT, GENERATION, ISSUED_AT, REFRESH_HOLDER, REFRESH_UNTIL, TokenItem, token_key,
};
use crate::{StoreError, StoredToken, TokenState, TokenStore};

fn millis(t: Timestamp) -> AttributeValue {
    AttributeValue::N(t.unix_millis().to_string())
}

impl DynamoStore {
    /// `Ok(false)` for a failed condition (TransactionConflict included: nothing was written).
    fn conditional<R: std::fmt::Debug>(
        &self,
        result: Result<(), SdkError<UpdateItemError, R>>,
    ) -> Result<bool, StoreError> {
        match result {
            Ok(()) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                        | UpdateItemError::TransactionConflictException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(op_error("UpdateItem", &self.table, &e)),
        }
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn load_token(&self, name: &str) -> Result<TokenState, StoreError> {
        token::check_name("a token name", name)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&token_key(name))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(sdk_message("GetItem", &self.table, &e)))?;
        match out.item {
            None => Ok(TokenState::default()),
            Some(item) => Ok(entity_from_item::<TokenItem>(item, Entity::Token)?.into_state()),
        }
    }

    async fn begin_refresh(
        &self,
        name: &str,
        seen_generation: u64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        token::check_begin(name, holder, now, until)?;
        let generation = if seen_generation == 0 {
            "(attribute_not_exists(#generation) OR #generation = :seen)"
        } else {
            "#generation = :seen"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&token_key(name))))
            .update_expression("SET #holder = :holder, #until = :until, #entity = :entity")
            .condition_expression(format!(
                "{generation} AND (attribute_not_exists(#holder) OR attribute_not_exists(#until) OR #until <= :now)"
            ))
            .expression_attribute_names("#generation", GENERATION)
            .expression_attribute_names("#holder", REFRESH_HOLDER)
            .expression_attribute_names("#until", REFRESH_UNTIL)
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":seen", AttributeValue::N(seen_generation.to_string()))
            .expression_attribute_values(":holder", string(holder))
            .expression_attribute_values(":until", millis(until))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":entity", string(Entity::Token.as_str()))
            .send()
            .await
            .map(|_| ());
        self.conditional(result)
    }

    async fn finish_refresh(&self, name: &str, holder: &str, new: &StoredToken) -> Result<bool, StoreError> {
        token::check_finish(name, holder, new)?;
        // The token's fields as the stored form spells them (Timestamp's own serialisation).
        let item = TokenItem {
            access_token: Some(new.access_token.clone()),
            issued_at: Some(new.issued_at),
            expires_at: Some(new.expires_at),
            ..TokenItem::default()
        };
        let attributes: super::Item =
            dynamo_serde::to_item(&item).map_err(|e| StoreError::Invalid(format!("cannot serialise a token: {e}")))?;
        let value = |name: &str| {
            attributes.get(name).cloned().ok_or_else(|| StoreError::Invalid(format!("token without {name}")))
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&token_key(name))))
            .update_expression(
                "SET #token = :token, #issued = :issued, #expires = :expires, \
                 #generation = if_not_exists(#generation, :zero) + :one REMOVE #holder, #until",
            )
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#token", ACCESS_TOKEN)
            .expression_attribute_names("#issued", ISSUED_AT)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#generation", GENERATION)
            .expression_attribute_names("#holder", REFRESH_HOLDER)
            .expression_attribute_names("#until", REFRESH_UNTIL)
            .expression_attribute_values(":token", value(ACCESS_TOKEN)?)
            .expression_attribute_values(":issued", value(ISSUED_AT)?)
            .expression_attribute_values(":expires", value(EXPIRES_AT)?)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":holder", string(holder))
            .send()
            .await
            .map(|_| ());
        self.conditional(result)
    }

    async fn abandon_refresh(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        token::check_name("a token name", name)?;
        token::check_name("a lock holder", holder)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&token_key(name))))
            .update_expression("REMOVE #holder, #until")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", REFRESH_HOLDER)
            .expression_attribute_names("#until", REFRESH_UNTIL)
            .expression_attribute_values(":holder", string(holder))
            .send()
            .await
            .map(|_| ());
        self.conditional(result)
    }
}
