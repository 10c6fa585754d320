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
    ... on MissionPlan { budget ttl agents { role department agent stage allocated } }
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

const SUMMARY = `id templateId status createdAt deadline finishedAt failureReason
  budget { allocated spent remaining } template { name } jobs { status }`;

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
    budget { allocated spent remaining } template { name }
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
