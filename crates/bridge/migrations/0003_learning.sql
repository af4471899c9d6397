-- Course catalog, course progress, quiz results and readiness reports.
CREATE TABLE course_series (
    tenant_id    text        NOT NULL,
    series_id    text        NOT NULL,
    name         text        NOT NULL,
    description  text,
    synced_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT course_series_pkey PRIMARY KEY (tenant_id, series_id),
    CONSTRAINT course_series_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('course_series');

-- A MindTickle module. One module can sit in several series; the series kept is the one it was
-- last seen in.
CREATE TABLE courses (
    tenant_id  text        NOT NULL,
    course_id  text        NOT NULL,
    series_id  text        NOT NULL,
    name       text        NOT NULL,
    kind       text        NOT NULL,
    synced_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT courses_pkey PRIMARY KEY (tenant_id, course_id),
    CONSTRAINT courses_series_fkey FOREIGN KEY (tenant_id, series_id)
        REFERENCES course_series (tenant_id, series_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('courses');

CREATE TABLE course_progress (
    tenant_id          text             NOT NULL,
    user_id            uuid             NOT NULL,
    course_id          text             NOT NULL,
    status             text             NOT NULL,
    percent_completed  double precision,
    score              double precision,
    max_score          double precision,
    started_at         timestamptz,
    completed_at       timestamptz,
    synced_at          timestamptz      NOT NULL,
    CONSTRAINT course_progress_pkey PRIMARY KEY (tenant_id, user_id, course_id),
    CONSTRAINT course_progress_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, user_id) ON DELETE CASCADE,
    CONSTRAINT course_progress_course_fkey FOREIGN KEY (tenant_id, course_id)
        REFERENCES courses (tenant_id, course_id) ON DELETE CASCADE,
    CONSTRAINT course_progress_status_check CHECK (status IN ('not_started', 'in_progress', 'completed'))
);
SELECT bridge_enable_tenant_rls('course_progress');

-- The last progress sync of each user, so a read can say how fresh the data is.
CREATE TABLE progress_syncs (
    tenant_id     text        NOT NULL,
    user_id       uuid        NOT NULL,
    synced_at     timestamptz NOT NULL,
    course_count  integer     NOT NULL,
    CONSTRAINT progress_syncs_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT progress_syncs_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('progress_syncs');

CREATE TABLE quiz_results (
    tenant_id         text             NOT NULL,
    result_id         uuid             NOT NULL,
    user_id           uuid             NOT NULL,
    quiz_id           text             NOT NULL,
    score             double precision NOT NULL,
    max_score         double precision NOT NULL,
    started_at        timestamptz,
    submitted_at      timestamptz      NOT NULL,
    duration_seconds  integer,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT quiz_results_pkey PRIMARY KEY (tenant_id, result_id),
    CONSTRAINT quiz_results_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, user_id) ON DELETE CASCADE,
    CONSTRAINT quiz_results_score_check CHECK (max_score > 0 AND score >= 0 AND score <= max_score)
);
CREATE INDEX quiz_results_user_quiz_idx ON quiz_results (tenant_id, user_id, quiz_id, submitted_at DESC);
SELECT bridge_enable_tenant_rls('quiz_results');

CREATE TABLE quiz_answers (
    tenant_id    text    NOT NULL,
    result_id    uuid    NOT NULL,
    position     integer NOT NULL,
    question_id  text    NOT NULL,
    answer       jsonb   NOT NULL,
    correct      boolean,
    CONSTRAINT quiz_answers_pkey PRIMARY KEY (tenant_id, result_id, position),
    CONSTRAINT quiz_answers_result_fkey FOREIGN KEY (tenant_id, result_id)
        REFERENCES quiz_results (tenant_id, result_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('quiz_answers');

CREATE TABLE readiness_reports (
    tenant_id             text             NOT NULL,
    report_id             uuid             NOT NULL,
    generated_at          timestamptz      NOT NULL,
    active_users          integer          NOT NULL,
    users_with_scores     integer          NOT NULL,
    score_count           integer          NOT NULL,
    average_score         double precision,
    assigned_courses      integer          NOT NULL,
    completed_courses     integer          NOT NULL,
    completion_rate       double precision,
    users_synced          integer          NOT NULL,
    provisional           boolean          NOT NULL,
    provisional_reason    text,
    CONSTRAINT readiness_reports_pkey PRIMARY KEY (tenant_id, report_id),
    CONSTRAINT readiness_reports_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
CREATE INDEX readiness_reports_latest_idx ON readiness_reports (tenant_id, generated_at DESC);
SELECT bridge_enable_tenant_rls('readiness_reports');
