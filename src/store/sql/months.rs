//! `service_months`: the figures of each Service Month, upserted as they
//! change.

use chrono::{DateTime, Utc};

use crate::sla::{MonthStatement, tiers};
use crate::store::StoreResult;

sql_impl! {
    pub(super) async fn save_service_months(
        &self,
        statements: &[MonthStatement],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for s in statements {
            sqlx::query(DB::SAVE_SERVICE_MONTH)
                .bind(&s.target)
                .bind(i64::from(s.month.index))
                .bind(s.month.first_day.to_string())
                .bind(s.month.last_day.to_string())
                .bind(s.month.start.to_rfc3339())
                .bind(s.month.end.to_rfc3339())
                .bind(s.total_minutes)
                .bind(s.available_minutes)
                .bind(s.failure_minutes)
                .bind(s.excluded_minutes)
                .bind(s.no_data_minutes)
                .bind(&s.availability_percent)
                .bind(i64::from(s.meets_commitment))
                .bind(i64::from(s.credit_percent))
                .bind(tiers::format_money(s.credit_amount))
                .bind(&s.currency)
                .bind(s.claim.opens.to_rfc3339())
                .bind(s.claim.deadline.to_rfc3339())
                .bind(i64::from(s.complete))
                .bind(now.to_rfc3339())
                .bind(&s.contract)
                .bind(s.unit_minutes)
                .bind(s.total_units())
                .bind(s.down_units())
                .bind(s.excluded_units())
                .bind(s.no_data_units())
                .bind(s.available_units())
                .execute(tx.on())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
