-- Which export carried each journal entry: the key of marts.accounting_entries' exported_in.
select
    export_id,
    journal_code,
    fiscal_year,
    entry_number
from {{ source('app', 'exported_entries') }}
