// Top-level routing between the welcome page, the prejoin page and the meeting.
export function App() {
  return <div>Convene</div>;
}
