{#- The dossiers whose billing figures may have changed since the last build, live: those
    app.mart_changes names, and for a logged supplier invoice line (a decision, a line registered
    in the app) the dossier the matching gives it and those its decisions name, as
    macros/mart_changes.sql reads the build's snapshot of the same log. The accountants' searches
    read these dossiers' statuses from the live views and the others' from the int_search__
    copies. A view: read at query time, never built into a table. An `everything` row in the log
    (a TRUNCATE, a bulk load) makes the searches read the views for every dossier instead. -#}
{{ config(schema='intermediate', materialized='view') }}

{{ mart_changes_dossiers_sql(source('app', 'mart_changes')) }}
