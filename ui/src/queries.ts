// Every operation the page sends, in one place.

export const VIEWER = `query Viewer { viewer { tenant role canOperate } }`;

export const TEMPLATES = `query Templates {
  templates {
    id name goal sector departments
    squad { role department agent budgetShare }
    defaults { budget ttl risk { level maxDrawdown } inputs }
    limits { budget { min max } ttl { min max } }
  }
}`;

export const PLAN = `query Plan($templateId: ID!, $config: MissionConfigInput) {
  planMission(templateId: $templateId, config: $config) {
    __typename
    ... on MissionPlan {
      budget ttl agents { role department agent stage allocated } approval { before timeout onTimeout }
    }
    ... on InvalidConfig { message problems { field message } }
    ... on TemplateNotFound { message }
  }
}`;

export const DEPLOY = `mutation Deploy($templateId: ID!, $config: MissionConfigInput, $key: String) {
  deployMission(templateId: $templateId, config: $config, idempotencyKey: $key) {
    __typename
    ... on MissionDeployed { mission { id } }
    ... on InvalidConfig { message problems { field message } }
    ... on TemplateNotFound { message }
    ... on RateLimited { message }
  }
}`;

const APPROVAL = `canDecide
  approval { state departments onTimeout requestedAt deadline decidedAt decidedBy comment approved }`;

const SUMMARY = `id templateId status createdAt deadline finishedAt failureReason
  budget { allocated spent remaining } template { name } jobs { status } ${APPROVAL}`;

export const MISSIONS = `query Missions($status: MissionStatus, $templateId: ID, $after: String) {
  missions(status: $status, templateId: $templateId, first: 20, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${SUMMARY} }
  }
}`;

export const UPDATES = `subscription Updates { missionUpdates { ${SUMMARY} } }`;

export const CANCEL = `mutation Cancel($id: ID!) {
  cancelMission(id: $id) {
    __typename
    ... on MissionCancelled { mission { ${SUMMARY} } }
    ... on MissionNotFound { message }
  }
}`;

export const MISSION = `query Mission($id: ID!) {
  mission(id: $id) {
    id templateId status createdAt deadline finishedAt failureReason
    budget { allocated spent remaining } template { name } ${APPROVAL}
    config { budget ttl risk { level maxDrawdown } inputs }
    jobs {
      id department role agent status attempts progress message startedAt finishedAt error output
      budget { allocated spent remaining }
    }
    graph { nodes { department roles status } edges { from to } stages }
  }
}`;

export const EVENTS = `subscription Events($missionId: ID!, $afterSeq: Int) {
  missionEvents(missionId: $missionId, afterSeq: $afterSeq) { seq missionId type status jobId at message data }
}`;

// Both answer with the mission as the tracker lists it; the flow view reads it again.
const DECISION_ANSWERS = `
    ... on MissionNotFound { message }
    ... on NotAwaitingApproval { message state }
    ... on ApprovalDenied { message }`;

export const APPROVE = `mutation Approve($id: ID!, $comment: String) {
  approveMission(id: $id, comment: $comment) {
    __typename
    ... on MissionApproved { mission { ${SUMMARY} } }${DECISION_ANSWERS}
  }
}`;

export const REJECT = `mutation Reject($id: ID!, $reason: String!) {
  rejectMission(id: $id, reason: $reason) {
    __typename
    ... on MissionRejected { mission { ${SUMMARY} } }${DECISION_ANSWERS}
  }
}`;
